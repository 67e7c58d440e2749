package shoprank.opensearch.plugin;

import java.io.Closeable;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.Executor;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.ThreadFactory;
import java.util.concurrent.ThreadPoolExecutor;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;

import java.io.IOException;

import io.grpc.ChannelCredentials;
import io.grpc.ManagedChannel;
import io.grpc.TlsChannelCredentials;
import io.grpc.netty.shaded.io.grpc.netty.NettyChannelBuilder;
import io.grpc.netty.shaded.io.netty.channel.EventLoopGroup;
import io.grpc.netty.shaded.io.netty.channel.nio.NioEventLoopGroup;
import io.grpc.netty.shaded.io.netty.channel.socket.nio.NioSocketChannel;

/**
 * The plugin's gRPC channels, one per sidecar address, shared by every pipeline and reused across
 * searches (a pipeline update or a second pipeline naming the same sidecar gets the same channel).
 * Threads are bounded: one netty event loop group and one small callback pool for all channels.
 */
final class Channels implements Closeable {
    /** Threads that run RPC callbacks (and the rest of the search pipeline after them). */
    static final int CALLBACK_THREADS = Math.max(2, Math.min(4, Runtime.getRuntime().availableProcessors()));
    static final int EVENT_LOOP_THREADS = Math.max(1, Math.min(2, Runtime.getRuntime().availableProcessors()));

    private final Map<String, ManagedChannel> channels = new ConcurrentHashMap<>();
    private final java.util.function.BiFunction<String, Tls, ManagedChannel> opener;
    private final ExecutorService callbacks;
    private final EventLoopGroup eventLoop;

    private Channels(java.util.function.BiFunction<String, Tls, ManagedChannel> opener, ExecutorService callbacks,
                     EventLoopGroup eventLoop) {
        this.opener = opener;
        this.callbacks = callbacks;
        this.eventLoop = eventLoop;
    }

    /** HTTP/2 channels through grpc-netty-shaded (its netty never meets OpenSearch's), TLS when configured. */
    static Channels netty() {
        ExecutorService callbacks = callbackPool();
        EventLoopGroup loop = new NioEventLoopGroup(EVENT_LOOP_THREADS, daemonThreads("shoprank-grpc-io"));
        return new Channels((target, tls) -> privileged(() -> {
            NettyChannelBuilder builder = tls == null
                ? NettyChannelBuilder.forTarget(target).usePlaintext()
                : NettyChannelBuilder.forTarget(target, credentials(tls));
            if (tls != null && tls.serverName != null) {
                builder.overrideAuthority(tls.serverName);
            }
            return builder
                // No proxy lookup: sidecars sit beside the cluster, and ProxySelector needs a permission.
                .proxyDetector(address -> null)
                .eventLoopGroup(loop)
                .channelType(NioSocketChannel.class)
                .executor(callbacks)
                .offloadExecutor(callbacks)
                .build();
        }), callbacks, loop);
    }

    private static ChannelCredentials credentials(Tls tls) {
        try {
            TlsChannelCredentials.Builder builder = TlsChannelCredentials.newBuilder();
            if (tls.caFile != null) {
                builder.trustManager(tls.caFile);
            }
            if (tls.certFile != null) {
                builder.keyManager(tls.certFile, tls.keyFile);
            }
            return builder.build();
        } catch (IOException e) {
            throw new IllegalArgumentException("[shoprank] tls: cannot read the PEM files: " + e.getMessage(), e);
        }
    }

    /** Channels some other way (tests: in-process); {@code opener} gets the callback executor. */
    static Channels custom(java.util.function.BiFunction<String, Executor, ManagedChannel> opener) {
        ExecutorService callbacks = callbackPool();
        return new Channels((target, tls) -> opener.apply(target, callbacks), callbacks, null);
    }

    private static ExecutorService callbackPool() {
        return new ThreadPoolExecutor(CALLBACK_THREADS, CALLBACK_THREADS, 60, TimeUnit.SECONDS,
            new LinkedBlockingQueue<>(), daemonThreads("shoprank-grpc-callback"));
    }

    /**
     * Threads created with the plugin's own permissions: a thread inherits the access-control
     * context of its creator, here often a search thread whose stack holds less-privileged code.
     */
    private static ThreadFactory daemonThreads(String prefix) {
        AtomicInteger count = new AtomicInteger();
        return runnable -> privileged(() -> {
            Thread thread = new Thread(runnable, prefix + "-" + count.incrementAndGet());
            thread.setDaemon(true);
            return thread;
        });
    }

    /** Runs with the plugin's permissions only (plugin-security.policy), whoever calls. */
    @SuppressWarnings("removal") // the security manager OpenSearch 2.x runs under
    static <T> T privileged(java.util.function.Supplier<T> action) {
        return java.security.AccessController.doPrivileged((java.security.PrivilegedAction<T>) action::get);
    }

    /** The channel to {@code target} (with {@code tls}, or plaintext when null), opened on first use. */
    ManagedChannel get(String target, Tls tls) {
        String key = tls == null ? target : target + "|tls|" + tls.key();
        return channels.computeIfAbsent(key, unused -> opener.apply(target, tls));
    }

    int size() {
        return channels.size();
    }

    @Override
    public void close() {
        for (ManagedChannel channel : channels.values()) {
            channel.shutdownNow();
        }
        for (ManagedChannel channel : channels.values()) {
            try {
                channel.awaitTermination(5, TimeUnit.SECONDS);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
        channels.clear();
        callbacks.shutdownNow();
        if (eventLoop != null) {
            eventLoop.shutdownGracefully(0, 1, TimeUnit.SECONDS);
        }
    }
}
