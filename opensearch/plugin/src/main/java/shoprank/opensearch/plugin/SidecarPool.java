package shoprank.opensearch.plugin;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.BiConsumer;
import java.util.function.LongSupplier;

import io.grpc.ManagedChannel;
import io.grpc.Status;
import io.grpc.stub.StreamObserver;
import shoprank.v1.EmbedderGrpc;
import shoprank.v1.Rerank.EmbedRequest;
import shoprank.v1.Rerank.EmbedResponse;
import shoprank.v1.Rerank.RerankRequest;
import shoprank.v1.Rerank.RerankResponse;
import shoprank.v1.RerankerGrpc;

/**
 * A processor's sidecars: each call (Rerank or Embed) goes to the next sidecar in round-robin order
 * whose circuit breaker lets it through; when every breaker is open the call is not made at all.
 */
final class SidecarPool {
    /** The outcome of one call, delivered once. */
    interface Callback<T> {
        void onResponse(T response, String target);

        /** {@code reason} is what ext.shoprank.fail_open_reason says. */
        void onFailure(String reason);
    }

    private static final class Target {
        final String address;
        final ManagedChannel channel;
        final RerankerGrpc.RerankerStub stub;
        final EmbedderGrpc.EmbedderStub embedder;
        final CircuitBreaker breaker;
        final LongSupplier clockMs;

        Target(String address, ManagedChannel channel, CircuitBreaker breaker, LongSupplier clockMs) {
            this.clockMs = clockMs;
            this.address = address;
            this.channel = channel;
            this.stub = RerankerGrpc.newStub(channel);
            this.embedder = EmbedderGrpc.newStub(channel);
            this.breaker = breaker;
        }
    }

    /** The reason's prefix when the sidecar serves another model than the caller expects. */
    static final String MISMATCH = "model_mismatch: ";

    private final List<Target> targets = new ArrayList<>();
    private final AtomicInteger next = new AtomicInteger();
    private final LongSupplier clockMs;

    SidecarPool(List<String> addresses, Tls tls, Channels channels, CircuitBreaker.Settings breaker, LongSupplier clockMs) {
        for (String address : addresses) {
            targets.add(new Target(address, channels.get(address, tls), new CircuitBreaker(breaker), clockMs));
        }
        this.clockMs = clockMs;
    }

    /** Sends one Rerank call with a deadline; {@code callback} hears once, on a callback thread or this one. */
    void rerank(RerankRequest request, long deadlineMs, Callback<RerankResponse> callback) {
        send(deadlineMs, callback, (target, observer) ->
            target.stub.withDeadlineAfter(deadlineMs, TimeUnit.MILLISECONDS).rerank(request, observer));
    }

    /** Sends one Embed call with a deadline; {@code callback} hears once, on a callback thread or this one. */
    void embed(EmbedRequest request, long deadlineMs, Callback<EmbedResponse> callback) {
        send(deadlineMs, callback, (target, observer) ->
            target.embedder.withDeadlineAfter(deadlineMs, TimeUnit.MILLISECONDS).embed(request, observer));
    }

    private <T> void send(long deadlineMs, Callback<T> callback, BiConsumer<Target, StreamObserver<T>> start) {
        Target target = pick();
        if (target == null) {
            callback.onFailure("circuit_open: every sidecar failed repeatedly; the next probe is after the back-off");
            return;
        }
        if (target.breaker.probing()) {
            // The channel may sit in its own reconnect back-off (up to minutes): try now.
            target.channel.resetConnectBackoff();
        }
        // Name resolution and connects may start on this (search) thread: with the plugin's permissions.
        Channels.privileged(() -> {
            start.accept(target, observer(target, deadlineMs, callback));
            return null;
        });
    }

    private static <T> StreamObserver<T> observer(Target target, long deadlineMs, Callback<T> callback) {
        return new StreamObserver<>() {
            private T response;

            @Override
            public void onNext(T value) {
                response = value;
            }

            @Override
            public void onError(Throwable error) {
                Status status = Status.fromThrowable(error);
                // The sidecar answered, healthy: our request was wrong, or for another model.
                if (status.getCode() == Status.Code.INVALID_ARGUMENT || status.getCode() == Status.Code.FAILED_PRECONDITION) {
                    target.breaker.onNeutral();
                } else {
                    target.breaker.onFailure(target.clockMs.getAsLong());
                }
                callback.onFailure(reason(status, deadlineMs, target.address));
            }

            @Override
            public void onCompleted() {
                target.breaker.onSuccess();
                if (response == null) {
                    callback.onFailure("error: " + target.address + " answered no response");
                } else {
                    callback.onResponse(response, target.address);
                }
            }
        };
    }

    private Target pick() {
        long now = clockMs.getAsLong();
        int start = Math.floorMod(next.getAndIncrement(), targets.size());
        for (int i = 0; i < targets.size(); i++) {
            Target target = targets.get((start + i) % targets.size());
            if (target.breaker.tryAcquire(now)) {
                return target;
            }
        }
        return null;
    }

    /** The breaker state of each sidecar, in config order (for tests and diagnostics). */
    List<CircuitBreaker.State> states() {
        List<CircuitBreaker.State> out = new ArrayList<>();
        for (Target target : targets) {
            out.add(target.breaker.state());
        }
        return out;
    }

    /** ext.shoprank.fail_open_reason for a failed call: a kind, then the detail. */
    static String reason(Status status, long deadlineMs, String target) {
        String detail = status.getDescription() == null ? "" : ": " + status.getDescription();
        switch (status.getCode()) {
            case UNAVAILABLE:
                return "unavailable: sidecar " + target + " cannot be reached" + detail;
            case DEADLINE_EXCEEDED:
                return "deadline_exceeded: sidecar " + target + " did not answer within " + deadlineMs + " ms";
            case RESOURCE_EXHAUSTED:
                return "overloaded: sidecar " + target + " shed the request" + detail;
            case INVALID_ARGUMENT:
                return "rejected: sidecar " + target + " refused the request" + detail;
            case FAILED_PRECONDITION:
                return MISMATCH + "sidecar " + target + " serves another model" + detail;
            default:
                return "error: sidecar " + target + " answered " + status.getCode() + detail;
        }
    }
}
