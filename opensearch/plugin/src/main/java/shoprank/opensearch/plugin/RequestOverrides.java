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
 * (none|mmr|xquad|dpp), {@code strength} in [0, 1], {@code explain}, and for UBI {@code query_id}
 * (the client's own id of this search; default a new UUID) and {@code client_id} (a pseudonymous
 * id of the shopper's browser or app), each at most 100 characters as UBI 1.3.0 says.
 */
final class RequestOverrides {
    static final Set<String> KEYS = Set.of("query_text", "rerank", "method", "strength", "explain", "query_id",
        "client_id");
    static final RequestOverrides NONE = new RequestOverrides(null, true, null, null, false, null, null);
    /** UBI 1.3.0's maxLength of query_id and client_id. */
    static final int UBI_ID_CHARS = 100;

    final String queryText;
    final boolean rerank;
    final String method;
    final Float strength;
    final boolean explain;
    final String queryId;
    final String clientId;

    RequestOverrides(String queryText, boolean rerank, String method, Float strength, boolean explain, String queryId,
                     String clientId) {
        this.queryId = queryId;
        this.clientId = clientId;
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
        String queryId = ubiId(config, "query_id");
        String clientId = ubiId(config, "client_id");
        if (clientId != null && clientId.contains("@")) {
            throw config.error("client_id", "looks like an e-mail address; send a pseudonymous id (e.g. a random UUID)");
        }
        config.rejectUnknown(KEYS);
        return new RequestOverrides(text, rerank, method, strength, explain, queryId, clientId);
    }

    private static String ubiId(Config config, String key) {
        String value = config.string(key, null);
        if (value != null && (value.isBlank() || value.length() > UBI_ID_CHARS)) {
            throw config.error(key, "must be 1 to " + UBI_ID_CHARS + " characters (UBI's limit), got " + value.length());
        }
        return value;
    }
}
