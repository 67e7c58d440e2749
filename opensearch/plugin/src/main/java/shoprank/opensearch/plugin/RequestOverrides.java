package shoprank.opensearch.plugin;

import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

import org.opensearch.search.SearchExtBuilder;
import org.opensearch.search.builder.SearchSourceBuilder;

/**
 * A request's {@code ext.shoprank}: {@code query_text} (the text to rerank for, else the query's
 * match/multi_match text), {@code rerank} (false: first-stage order), {@code method}
 * (none|mmr|xquad|dpp), {@code strength} in [0, 1] and {@code explain}.
 */
final class RequestOverrides {
    static final Set<String> KEYS = Set.of("query_text", "rerank", "method", "strength", "explain");
    static final RequestOverrides NONE = new RequestOverrides(null, true, null, null, false);

    final String queryText;
    final boolean rerank;
    final String method;
    final Float strength;
    final boolean explain;

    RequestOverrides(String queryText, boolean rerank, String method, Float strength, boolean explain) {
        this.queryText = queryText;
        this.rerank = rerank;
        this.method = method;
        this.strength = strength;
        this.explain = explain;
    }

    /** The overrides of a request's source (NONE without ext.shoprank); a bad value is a 400. */
    static RequestOverrides of(SearchSourceBuilder source) {
        if (source == null || source.ext() == null) {
            return NONE;
        }
        List<SearchExtBuilder> exts = source.ext();
        for (SearchExtBuilder ext : exts) {
            if (ext instanceof ShoprankExt) {
                return parse(((ShoprankExt) ext).content());
            }
        }
        return NONE;
    }

    static RequestOverrides parse(Map<String, Object> content) {
        Config config = new Config("ext.shoprank", new HashMap<>(content));
        String text = config.string("query_text", null);
        boolean rerank = config.bool("rerank", true);
        String method = config.string("method", null);
        if (method != null) {
            method = Diversity.checkMethod(config, "method", method);
        }
        Float strength = config.unitInterval("strength");
        boolean explain = config.bool("explain", false);
        config.rejectUnknown(KEYS);
        return new RequestOverrides(text, rerank, method, strength, explain);
    }
}
