package shoprank.opensearch.plugin;

import java.io.File;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Set;

/**
 * TLS to the sidecars ({@code tls} in the processor config): {@code ca_file} (PEM bundle the
 * sidecar's certificate is checked against; default: the JVM's trust store), {@code cert_file}
 * and {@code key_file} (PEM client certificate and PKCS#8 key, for mTLS; both or neither) and
 * {@code server_name} (the name in the sidecar's certificate when it differs from the target
 * host). Relative paths are under OpenSearch's config directory.
 */
final class Tls {
    static final Set<String> KEYS = Set.of("ca_file", "cert_file", "key_file", "server_name");

    final File caFile;
    final File certFile;
    final File keyFile;
    final String serverName;

    private Tls(File caFile, File certFile, File keyFile, String serverName) {
        this.caFile = caFile;
        this.certFile = certFile;
        this.keyFile = keyFile;
        this.serverName = serverName;
    }

    /** The settings of a {@code tls} object, or null when the config has none. */
    static Tls parse(Config config, Path configDir) {
        String ca = config.string("ca_file", null);
        String cert = config.string("cert_file", null);
        String key = config.string("key_file", null);
        String serverName = config.string("server_name", null);
        config.rejectUnknown(KEYS);
        if (ca == null && cert == null && key == null && serverName == null) {
            return null;
        }
        if ((cert == null) != (key == null)) {
            throw config.error(cert == null ? "cert_file" : "key_file",
                "mTLS needs both cert_file and key_file (PEM), or neither");
        }
        return new Tls(file(config, "ca_file", ca, configDir), file(config, "cert_file", cert, configDir),
            file(config, "key_file", key, configDir), serverName);
    }

    private static File file(Config config, String key, String value, Path configDir) {
        if (value == null) {
            return null;
        }
        Path path = Path.of(value);
        if (!path.isAbsolute() && configDir != null) {
            path = configDir.resolve(path);
        }
        Path resolved = path;
        boolean readable = Channels.privileged(() -> Files.isReadable(resolved));
        if (!readable) {
            throw config.error(key, resolved + " is not a readable file (relative paths are under the config directory)");
        }
        return resolved.toFile();
    }

    /** Identity for sharing channels: two pipelines with the same files share one channel. */
    String key() {
        return caFile + "|" + certFile + "|" + keyFile + "|" + serverName;
    }
}
