package shoprank.opensearch;

import java.io.IOException;
import java.io.InputStream;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.ArrayList;
import java.util.Collection;
import java.util.Collections;
import java.util.List;
import java.util.Properties;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;

import org.opensearch.common.logging.LogConfigurator;
import org.opensearch.common.settings.Settings;
import org.opensearch.env.Environment;
import org.opensearch.node.InternalSettingsPreparer;
import org.opensearch.node.Node;
import org.opensearch.plugins.Plugin;

/**
 * A single OpenSearch node whose modules and plugins are loaded from the classpath, the way
 * OpenSearch's own MockNode does it: the home's plugins/ and modules/ stay empty, so no plugin
 * class loader, security policy or native controller is involved.
 *
 * <p>Arguments: {@code --home DIR --http-port N [--plugins DIR] [-E key=value ...]}. The zip
 * plugins are the subfolders of each --plugins (repeatable), each with its plugin-descriptor.properties (their jars
 * must already be on the classpath). Bound to 127.0.0.1 only; there is no security plugin.
 */
public final class SingleNode {
    /** The modules of a distribution that shoprank needs, as the pom resolves them. */
    private static final String[] MODULES = {
        "org.opensearch.transport.Netty4Plugin",
        "org.opensearch.analysis.common.CommonAnalysisPlugin",
        "org.opensearch.script.mustache.MustachePlugin",
        "org.opensearch.index.mapper.MapperExtrasPlugin",
    };

    private SingleNode() {}

    public static void main(String[] args) throws Exception {
        Path home = null;
        List<Path> pluginsDirs = new ArrayList<>();
        String httpPort = null;
        Settings.Builder extra = Settings.builder();
        for (int i = 0; i < args.length; i++) {
            String arg = args[i];
            if (i + 1 >= args.length) {
                throw usage("missing value after " + arg);
            }
            String value = args[++i];
            switch (arg) {
                case "--home":
                    home = Paths.get(value).toAbsolutePath();
                    break;
                case "--http-port":
                    httpPort = value;
                    break;
                case "--plugins":
                    pluginsDirs.add(Paths.get(value).toAbsolutePath());
                    break;
                case "-E":
                    int eq = value.indexOf('=');
                    if (eq <= 0) {
                        throw usage("-E wants key=value, got " + value);
                    }
                    extra.put(value.substring(0, eq), value.substring(eq + 1));
                    break;
                default:
                    throw usage("unknown argument " + arg);
            }
        }
        if (home == null || httpPort == null) {
            throw usage("--home and --http-port are required");
        }
        for (String dir : new String[] {"config", "data", "logs", "plugins", "modules"}) {
            Files.createDirectories(home.resolve(dir));
        }
        Settings settings = Settings.builder()
            .put("path.home", home.toString())
            .put("path.data", home.resolve("data").toString())
            .put("path.logs", home.resolve("logs").toString())
            .put("cluster.name", "shoprank-single-node")
            .put("node.name", "shoprank-single-node")
            .put("discovery.type", "single-node")
            .put("network.host", "127.0.0.1")
            .put("http.port", httpPort)
            .put("transport.port", "0")
            // A dev node on a nearly full disk would otherwise refuse to allocate shards.
            .put("cluster.routing.allocation.disk.threshold_enabled", false)
            .put(extra.build())
            .build();

        LogConfigurator.registerErrorListener();
        Environment environment = InternalSettingsPreparer.prepareEnvironment(
            settings, Collections.emptyMap(), home.resolve("config"), () -> "shoprank-single-node");
        writeConsoleLogConfig(home.resolve("config").resolve("log4j2.properties"));
        LogConfigurator.setNodeName("shoprank-single-node");
        LogConfigurator.configure(environment);

        List<Class<? extends Plugin>> plugins = new ArrayList<>();
        for (String name : MODULES) {
            plugins.add(pluginClass(name));
        }
        for (Path pluginsDir : pluginsDirs) {
            plugins.addAll(zipPlugins(pluginsDir));
        }

        Node node = new ClasspathNode(environment, plugins);
        CountDownLatch stopped = new CountDownLatch(1);
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            try {
                node.close();
                node.awaitClose(30, TimeUnit.SECONDS);
            } catch (IOException | InterruptedException e) {
                System.err.println("error while stopping the node: " + e);
            } finally {
                stopped.countDown();
            }
        }, "shoprank-node-shutdown"));
        node.start();
        System.out.println("shoprank single node started: http://127.0.0.1:" + httpPort);
        stopped.await();
    }

    /** A console-only log4j2 config (the node's output is its log), unless the home has one. */
    private static void writeConsoleLogConfig(Path file) throws IOException {
        if (Files.exists(file)) {
            return;
        }
        Files.writeString(file, String.join("\n",
            "status = error",
            "shutdownHook = disable",
            "appender.console.type = Console",
            "appender.console.name = console",
            "appender.console.layout.type = PatternLayout",
            "appender.console.layout.pattern = [%d{ISO8601}][%-5p][%-25c{1.}] [%node_name]%marker %m%n",
            "rootLogger.level = info",
            "rootLogger.appenderRef.console.ref = console",
            "logger.deprecation.name = org.opensearch.deprecation",
            "logger.deprecation.level = error",
            ""));
    }

    /** The plugin classes named by each subfolder's plugin-descriptor.properties, in name order. */
    private static List<Class<? extends Plugin>> zipPlugins(Path pluginsDir) throws IOException {
        List<Path> dirs = new ArrayList<>();
        try (DirectoryStream<Path> stream = Files.newDirectoryStream(pluginsDir)) {
            for (Path dir : stream) {
                if (Files.isRegularFile(dir.resolve("plugin-descriptor.properties"))) {
                    dirs.add(dir);
                }
            }
        }
        Collections.sort(dirs);
        List<Class<? extends Plugin>> classes = new ArrayList<>();
        for (Path dir : dirs) {
            Properties descriptor = new Properties();
            try (InputStream in = Files.newInputStream(dir.resolve("plugin-descriptor.properties"))) {
                descriptor.load(in);
            }
            String classname = descriptor.getProperty("classname");
            if (classname == null) {
                throw new IllegalStateException(dir + "/plugin-descriptor.properties names no classname");
            }
            classes.add(pluginClass(classname));
        }
        return classes;
    }

    private static Class<? extends Plugin> pluginClass(String name) {
        try {
            return Class.forName(name).asSubclass(Plugin.class);
        } catch (ClassNotFoundException e) {
            throw new IllegalStateException("plugin class " + name + " is not on the classpath", e);
        }
    }

    private static IllegalArgumentException usage(String problem) {
        return new IllegalArgumentException(
            problem + "; usage: SingleNode --home DIR --http-port N [--plugins DIR ...] [-E key=value ...]");
    }

    /** Node's constructor that takes classpath plugins is protected: MockNode's mechanism. */
    private static final class ClasspathNode extends Node {
        ClasspathNode(Environment environment, Collection<Class<? extends Plugin>> plugins) {
            super(environment, plugins, true);
        }
    }
}
