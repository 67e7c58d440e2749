package shoprank.opensearch.plugin;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.LongSupplier;

import io.grpc.ManagedChannel;
import io.grpc.Status;
import io.grpc.stub.StreamObserver;
import shoprank.v1.Rerank.RerankRequest;
import shoprank.v1.Rerank.RerankResponse;
import shoprank.v1.RerankerGrpc;

/**
 * A pipeline's sidecars: each call goes to the next sidecar in round-robin order whose circuit
 * breaker lets it through; when every breaker is open the call is not made at all.
 */
final class SidecarPool {
    /** The outcome of one Rerank call, delivered once. */
    interface Callback {
        void onResponse(RerankResponse response, String target);

        /** {@code reason} is what ext.shoprank.fail_open_reason says. */
        void onFailure(String reason);
    }

    private static final class Target {
        final String address;
        final ManagedChannel channel;
        final RerankerGrpc.RerankerStub stub;
        final CircuitBreaker breaker;

        Target(String address, ManagedChannel channel, CircuitBreaker breaker) {
            this.address = address;
            this.channel = channel;
            this.stub = RerankerGrpc.newStub(channel);
            this.breaker = breaker;
        }
    }

    private final List<Target> targets = new ArrayList<>();
    private final AtomicInteger next = new AtomicInteger();
    private final LongSupplier clockMs;

    SidecarPool(List<String> addresses, Tls tls, Channels channels, CircuitBreaker.Settings breaker, LongSupplier clockMs) {
        for (String address : addresses) {
            targets.add(new Target(address, channels.get(address, tls), new CircuitBreaker(breaker)));
        }
        this.clockMs = clockMs;
    }

    /** Sends one Rerank call with a deadline; {@code callback} hears once, on a callback thread or this one. */
    void rerank(RerankRequest request, long deadlineMs, Callback callback) {
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
            call(target, request, deadlineMs, callback);
            return null;
        });
    }

    private void call(Target target, RerankRequest request, long deadlineMs, Callback callback) {
        target.stub.withDeadlineAfter(deadlineMs, TimeUnit.MILLISECONDS).rerank(request, new StreamObserver<>() {
            private RerankResponse response;

            @Override
            public void onNext(RerankResponse value) {
                response = value;
            }

            @Override
            public void onError(Throwable error) {
                Status status = Status.fromThrowable(error);
                if (status.getCode() == Status.Code.INVALID_ARGUMENT) {
                    target.breaker.onNeutral();
                } else {
                    target.breaker.onFailure(clockMs.getAsLong());
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
        });
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
            default:
                return "error: sidecar " + target + " answered " + status.getCode() + detail;
        }
    }
}
