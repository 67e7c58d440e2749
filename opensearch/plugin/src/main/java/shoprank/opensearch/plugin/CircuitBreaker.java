package shoprank.opensearch.plugin;

/**
 * One sidecar's circuit breaker: after {@code failures} consecutive failed calls it opens and
 * calls are skipped (a dead sidecar then costs nothing per search); once the back-off has passed,
 * one call goes through as a probe: success closes it, failure reopens it with twice the back-off
 * (up to the maximum).
 */
final class CircuitBreaker {
    /** The breaker's thresholds. */
    static final class Settings {
        final int failures;
        final long backoffMs;
        final long maxBackoffMs;

        Settings(int failures, long backoffMs, long maxBackoffMs) {
            this.failures = failures;
            this.backoffMs = backoffMs;
            this.maxBackoffMs = Math.max(backoffMs, maxBackoffMs);
        }
    }

    enum State { CLOSED, OPEN, HALF_OPEN }

    private final Settings settings;
    private State state = State.CLOSED;
    private int consecutiveFailures;
    private long currentBackoffMs;
    private long openUntilMs;

    CircuitBreaker(Settings settings) {
        this.settings = settings;
        this.currentBackoffMs = settings.backoffMs;
    }

    /** Whether a call may go out at {@code nowMs}; a true while open-past-back-off makes it the probe. */
    synchronized boolean tryAcquire(long nowMs) {
        switch (state) {
            case CLOSED:
                return true;
            case OPEN:
                if (nowMs >= openUntilMs) {
                    state = State.HALF_OPEN;
                    return true;
                }
                return false;
            default:
                return false; // a probe is in flight
        }
    }

    /** Whether the next call that is let through is a probe (the caller then resets reconnect back-off). */
    synchronized boolean probing() {
        return state == State.HALF_OPEN;
    }

    synchronized void onSuccess() {
        state = State.CLOSED;
        consecutiveFailures = 0;
        currentBackoffMs = settings.backoffMs;
    }

    synchronized void onFailure(long nowMs) {
        consecutiveFailures++;
        if (state == State.HALF_OPEN) {
            currentBackoffMs = Math.min(currentBackoffMs * 2, settings.maxBackoffMs);
            open(nowMs);
        } else if (state == State.CLOSED && consecutiveFailures >= settings.failures) {
            open(nowMs);
        }
    }

    /** A call that neither proved nor disproved the sidecar's health (e.g. our request was invalid). */
    synchronized void onNeutral() {
        if (state == State.HALF_OPEN) {
            state = State.CLOSED;
            consecutiveFailures = 0;
        }
    }

    private void open(long nowMs) {
        state = State.OPEN;
        openUntilMs = nowMs + currentBackoffMs;
    }

    synchronized State state() {
        return state;
    }
}
