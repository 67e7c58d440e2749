package shoprank.opensearch.plugin;

import java.util.List;

/**
 * How one request's page relates to the rerank window (the oversample/truncate pattern).
 *
 * <p>The rule: a page that starts inside the window ({@code from < window}) is cut from one
 * ranked list, the window's hits reranked followed by the hits past the window in first-stage
 * order; OpenSearch is asked for {@code from=0, size=max(window, from+size)}. So pages 1..n of a
 * window are slices of one ranking, and a later page never repeats or skips a hit. A page that
 * starts at or past the window ({@code from >= window}) holds no hit of the window: it passes
 * through untouched, in first-stage order.
 */
final class PagePlan {
    /** OpenSearch's default page size when a request names none. */
    static final int DEFAULT_SIZE = 10;

    final int from;
    final int size;
    final int window;
    /** Null when the window is reranked; else why the page passes through in first-stage order. */
    final String skipReason;

    private PagePlan(int from, int size, int window, String skipReason) {
        this.from = from;
        this.size = size;
        this.window = window;
        this.skipReason = skipReason;
    }

    /** The plan for a request asking for {@code from}/{@code size} (-1: unset) with a window. */
    static PagePlan of(int from, int size, int window) {
        int f = Math.max(from, 0);
        int s = size < 0 ? DEFAULT_SIZE : size;
        if (s == 0) {
            return skip(f, s, window, "no_hits_requested: size is 0");
        }
        if (f >= window) {
            return skip(f, s, window, "beyond_window: from " + f + " >= window " + window
                + "; hits past the rerank window are served in first-stage order");
        }
        return new PagePlan(f, s, window, null);
    }

    /** A page served as OpenSearch ranked it. */
    static PagePlan skip(int from, int size, int window, String reason) {
        return new PagePlan(Math.max(from, 0), size < 0 ? DEFAULT_SIZE : size, window, reason);
    }

    boolean reranks() {
        return skipReason == null;
    }

    /** The {@code from} to ask OpenSearch for. */
    int fetchFrom() {
        return reranks() ? 0 : from;
    }

    /** The {@code size} to ask OpenSearch for. */
    int fetchSize() {
        return reranks() ? Math.max(window, from + size) : size;
    }

    /** The requested page of a ranked list that starts at rank 0 (empty past its end). */
    <T> List<T> page(List<T> ranked) {
        int start = Math.min(from, ranked.size());
        int end = Math.min(from + size, ranked.size());
        return ranked.subList(start, end);
    }

    @Override
    public String toString() {
        return "PagePlan[from=" + from + ", size=" + size + ", window=" + window
            + (skipReason == null ? "" : ", skip=" + skipReason) + "]";
    }
}
