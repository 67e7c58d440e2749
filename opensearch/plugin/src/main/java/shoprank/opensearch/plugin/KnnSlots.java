package shoprank.opensearch.plugin;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * The clauses {@code shoprank_embed} fills, found in a query's JSON form (nested maps and lists),
 * at any depth: inside bool, hybrid, dis_max, function_score or another plugin's wrapper.
 *
 * <ul>
 *   <li>{@code {"knn": {"<field>": {"vector": [0], "k": 100}}}}: a knn clause whose vector is the
 *       one-value placeholder gets the embedding of the query text (OpenSearch's parser wants a
 *       non-empty vector); a clause with a whole vector is the client's own and is left alone;</li>
 *   <li>{@code {"neural": {"<field>": {"query_text": "...", "k": 100}}}}: OpenSearch's own text-to-vector
 *       clause becomes that knn clause, embedded from its {@code query_text}, with k, filter, boost,
 *       _name, max_distance, min_score, method_parameters, rescore and expand_nested_docs kept.</li>
 * </ul>
 */
final class KnnSlots {
    static final String KNN = "knn";
    static final String NEURAL = "neural";
    /** neural's default k when it names none of k, max_distance and min_score. */
    static final int NEURAL_DEFAULT_K = 10;
    /** A knn vector this short is a placeholder to fill (no knn_vector field has one dimension). */
    static final int PLACEHOLDER_MAX_VALUES = 1;
    private static final Set<String> KEPT = Set.of("k", "filter", "boost", "_name", "max_distance", "min_score",
        "method_parameters", "rescore", "expand_nested_docs");

    /** One clause to fill: the single-key map holding it, which kind, its own text (neural) and whether it is the whole query. */
    static final class Slot {
        final Map<String, Object> clause;
        final String kind;
        final String ownText;
        final boolean root;

        Slot(Map<String, Object> clause, String kind, String ownText, boolean root) {
            this.clause = clause;
            this.kind = kind;
            this.ownText = ownText;
            this.root = root;
        }
    }

    private KnnSlots() {}

    /** A mutable deep copy of a parsed query (maps keep their order). */
    @SuppressWarnings("unchecked")
    static Object copy(Object node) {
        if (node instanceof Map) {
            Map<String, Object> out = new LinkedHashMap<>();
            for (Map.Entry<String, Object> entry : ((Map<String, Object>) node).entrySet()) {
                out.put(entry.getKey(), copy(entry.getValue()));
            }
            return out;
        }
        if (node instanceof List) {
            List<Object> out = new ArrayList<>();
            for (Object item : (List<Object>) node) {
                out.add(copy(item));
            }
            return out;
        }
        return node;
    }

    /** The knn and neural clauses on {@code field}, depth first, in the order they appear. */
    static List<Slot> find(Map<String, Object> query, String field) {
        List<Slot> out = new ArrayList<>();
        walk(query, field, true, out);
        return out;
    }

    @SuppressWarnings("unchecked")
    private static void walk(Object node, String field, boolean root, List<Slot> out) {
        if (node instanceof Map) {
            Map<String, Object> map = (Map<String, Object>) node;
            if (map.size() == 1) {
                String kind = map.keySet().iterator().next();
                Object body = bodyOn(map.get(kind), field);
                if (body != null && KNN.equals(kind) && placeholder(((Map<String, Object>) body).get("vector"))) {
                    out.add(new Slot(map, kind, null, root));
                    return;
                }
                if (body != null && NEURAL.equals(kind)) {
                    Object text = ((Map<String, Object>) body).get("query_text");
                    out.add(new Slot(map, kind, text instanceof String ? (String) text : null, root));
                    return;
                }
            }
            for (Object value : map.values()) {
                walk(value, field, false, out);
            }
        } else if (node instanceof List) {
            for (Object item : (List<Object>) node) {
                walk(item, field, false, out);
            }
        }
    }

    /** Whether a knn clause's vector is the placeholder a text-only client sends (at most one value). */
    static boolean placeholder(Object vector) {
        return vector instanceof List && ((List<?>) vector).size() <= PLACEHOLDER_MAX_VALUES;
    }

    /** The clause body for {@code field} ({@code {"<field>": {...}}}), or null. */
    private static Object bodyOn(Object value, String field) {
        if (!(value instanceof Map)) {
            return null;
        }
        Map<?, ?> byField = (Map<?, ?>) value;
        Object body = byField.size() == 1 ? byField.get(field) : null;
        return body instanceof Map ? body : null;
    }

    /** Puts {@code vector} into the slot: a knn clause gets it as its vector, a neural clause becomes a knn clause. */
    @SuppressWarnings("unchecked")
    static void fill(Slot slot, String field, List<Float> vector) {
        Map<String, Object> body = (Map<String, Object>) ((Map<String, Object>) slot.clause.get(slot.kind)).get(field);
        if (KNN.equals(slot.kind)) {
            body.put("vector", vector);
            return;
        }
        Map<String, Object> knn = new LinkedHashMap<>();
        knn.put("vector", vector);
        for (Map.Entry<String, Object> entry : body.entrySet()) {
            if (KEPT.contains(entry.getKey()) && entry.getValue() != null) {
                knn.put(entry.getKey(), entry.getValue());
            }
        }
        if (!knn.containsKey("k") && !knn.containsKey("max_distance") && !knn.containsKey("min_score")) {
            knn.put("k", NEURAL_DEFAULT_K);
        }
        Map<String, Object> byField = new LinkedHashMap<>();
        byField.put(field, knn);
        slot.clause.clear();
        slot.clause.put(KNN, byField);
    }

    /** Replaces the slot by {@code match_none}: a hybrid query keeps its sub-query positions (and weights). */
    static void drop(Slot slot) {
        slot.clause.clear();
        slot.clause.put("match_none", new LinkedHashMap<>());
    }
}
