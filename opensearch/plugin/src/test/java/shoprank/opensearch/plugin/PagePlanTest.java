package shoprank.opensearch.plugin;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import java.util.stream.Collectors;
import java.util.stream.IntStream;

import org.junit.jupiter.api.Test;

class PagePlanTest {
    private static List<Integer> ranks(int n) {
        return IntStream.range(0, n).boxed().collect(Collectors.toList());
    }

    @Test
    void pageInsideTheWindowFetchesTheWholeWindowFromZero() {
        PagePlan plan = PagePlan.of(20, 10, 100);
        assertTrue(plan.reranks());
        assertEquals(0, plan.fetchFrom());
        assertEquals(100, plan.fetchSize());
        assertEquals(ranks(100).subList(20, 30), plan.page(ranks(100)));
    }

    @Test
    void pageStraddlingTheWindowEdgeFetchesThroughItsEnd() {
        PagePlan plan = PagePlan.of(95, 10, 100);
        assertTrue(plan.reranks());
        assertEquals(105, plan.fetchSize());
        assertEquals(ranks(105).subList(95, 105), plan.page(ranks(105)));
    }

    @Test
    void pageAtOrPastTheWindowPassesThrough() {
        PagePlan plan = PagePlan.of(100, 10, 100);
        assertFalse(plan.reranks());
        assertTrue(plan.skipReason.startsWith("beyond_window"));
        assertEquals(100, plan.fetchFrom());
        assertEquals(10, plan.fetchSize());
    }

    @Test
    void unsetFromAndSizeAreOpenSearchDefaults() {
        PagePlan plan = PagePlan.of(-1, -1, 30);
        assertEquals(0, plan.from);
        assertEquals(10, plan.size);
        assertEquals(30, plan.fetchSize());
    }

    @Test
    void sizeZeroIsNotReranked() {
        assertFalse(PagePlan.of(0, 0, 30).reranks());
    }

    @Test
    void pagePastTheEndOfTheHitsIsEmptyOrShort() {
        PagePlan plan = PagePlan.of(20, 10, 100);
        assertEquals(List.of(), plan.page(ranks(15)));
        assertEquals(ranks(25).subList(20, 25), plan.page(ranks(25)));
    }

    @Test
    void consecutivePagesTileTheWindowWithoutGapsOrRepeats() {
        List<Integer> ranked = ranks(30);
        List<Integer> seen = new java.util.ArrayList<>();
        for (int page = 0; page < 3; page++) {
            seen.addAll(PagePlan.of(page * 10, 10, 30).page(ranked));
        }
        assertEquals(ranked, seen);
    }
}
