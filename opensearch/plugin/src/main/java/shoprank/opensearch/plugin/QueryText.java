package shoprank.opensearch.plugin;

import java.io.IOException;
import java.util.List;
import java.util.Map;

import org.opensearch.common.xcontent.XContentHelper;
import org.opensearch.common.xcontent.XContentType;
import org.opensearch.core.common.bytes.BytesReference;
import org.opensearch.core.xcontent.ToXContent;
import org.opensearch.core.xcontent.XContentBuilder;
import org.opensearch.common.xcontent.json.JsonXContent;
import org.opensearch.index.query.QueryBuilder;

/**
 * The text a query searches for: the first match-family clause found depth-first in the query's
 * JSON form, so it is found inside bool, hybrid, function_score or any other wrapper, including
 * query types of other plugins.
 */
final class QueryText {
    /** Clauses whose text is {@code {"query": "..."}} directly. */
    private static final List<String> DIRECT = List.of("multi_match", "combined_fields", "simple_query_string", "query_string");
    /** Clauses whose text is {@code {"<field>": "..." | {"query": "..."}}}. */
    private static final List<String> PER_FIELD = List.of("match", "match_phrase", "match_bool_prefix", "match_phrase_prefix");

    private QueryText() {}

    /** The query's text, or null when it has no text clause. */
    static String of(QueryBuilder query) {
        if (query == null) {
            return null;
        }
        try {
            return find(toMap(query));
        } catch (IOException e) {
            return null;
        }
    }

    /** A query in its JSON form, as nested maps and lists (ordered as written). */
    static Map<String, Object> toMap(QueryBuilder query) throws IOException {
        XContentBuilder builder = JsonXContent.contentBuilder();
        query.toXContent(builder, ToXContent.EMPTY_PARAMS);
        return XContentHelper.convertToMap(BytesReference.bytes(builder), true, XContentType.JSON).v2();
    }

    /** Depth-first search of a parsed query for its text. */
    static String find(Object node) {
        if (node instanceof Map) {
            Map<?, ?> map = (Map<?, ?>) node;
            for (Map.Entry<?, ?> entry : map.entrySet()) {
                String key = String.valueOf(entry.getKey());
                Object value = entry.getValue();
                if (DIRECT.contains(key) && value instanceof Map) {
                    Object text = ((Map<?, ?>) value).get("query");
                    if (text instanceof String && !((String) text).isBlank()) {
                        return (String) text;
                    }
                }
                if (PER_FIELD.contains(key) && value instanceof Map) {
                    for (Object field : ((Map<?, ?>) value).values()) {
                        Object text = field instanceof Map ? ((Map<?, ?>) field).get("query") : field;
                        if (text instanceof String && !((String) text).isBlank()) {
                            return (String) text;
                        }
                    }
                }
            }
            for (Object value : map.values()) {
                String found = find(value);
                if (found != null) {
                    return found;
                }
            }
        } else if (node instanceof List) {
            for (Object item : (List<?>) node) {
                String found = find(item);
                if (found != null) {
                    return found;
                }
            }
        }
        return null;
    }
}
