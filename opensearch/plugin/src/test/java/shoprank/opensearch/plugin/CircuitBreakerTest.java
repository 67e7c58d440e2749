package shoprank.opensearch.plugin;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

class CircuitBreakerTest {
    @Test
    void opensAfterConsecutiveFailuresAndProbesAfterTheBackoff() {
        CircuitBreaker breaker = new CircuitBreaker(new CircuitBreaker.Settings(3, 100, 1000));
        for (int i = 0; i < 2; i++) {
            assertTrue(breaker.tryAcquire(0));
            breaker.onFailure(0);
        }
        assertEquals(CircuitBreaker.State.CLOSED, breaker.state());
        breaker.onFailure(0);
        assertEquals(CircuitBreaker.State.OPEN, breaker.state());
        assertFalse(breaker.tryAcquire(99));
        assertTrue(breaker.tryAcquire(100)); // the probe
        assertTrue(breaker.probing());
        assertFalse(breaker.tryAcquire(100)); // one probe at a time
        breaker.onFailure(100);
        assertFalse(breaker.tryAcquire(299)); // back-off doubled
        assertTrue(breaker.tryAcquire(300));
        breaker.onSuccess();
        assertEquals(CircuitBreaker.State.CLOSED, breaker.state());
        assertTrue(breaker.tryAcquire(300));
    }

    @Test
    void successResetsTheCount() {
        CircuitBreaker breaker = new CircuitBreaker(new CircuitBreaker.Settings(2, 100, 100));
        breaker.onFailure(0);
        breaker.onSuccess();
        breaker.onFailure(0);
        assertEquals(CircuitBreaker.State.CLOSED, breaker.state());
    }

    @Test
    void backoffIsCapped() {
        CircuitBreaker breaker = new CircuitBreaker(new CircuitBreaker.Settings(1, 100, 150));
        breaker.onFailure(0);
        assertTrue(breaker.tryAcquire(100));
        breaker.onFailure(100);
        assertTrue(breaker.tryAcquire(250)); // 150, not 200
    }
}
