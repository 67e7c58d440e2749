package shoprank.opensearch.plugin;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

import org.opensearch.common.document.DocumentField;
import org.opensearch.search.SearchHit;

import shoprank.v1.Rerank.Candidate;
import shoprank.v1.Rerank.Explanation;
import shoprank.v1.Rerank.Product;
import shoprank.v1.Rerank.RerankResponse;
import shoprank.v1.Rerank.ScoredResult;

/** Hits to the sidecar's candidates and the sidecar's ranking back to hits. */
final class Hits {
    /** Hit fields the rerank adds (under "fields" in the response). */
    static final String FIRST_STAGE_SCORE = "shoprank.first_stage_score";
    static final String FIRST_STAGE_RANK = "shoprank.first_stage_rank";
    static final String RELEVANCE_SCORE = "shoprank.relevance_score";
    static final String EXPLANATION = "shoprank.explanation";

    private Hits() {}

    /** The candidate ids of a window: {@code _id} (or id_field), qualified by index when two hits share one. */
    static List<String> ids(List<SearchHit> window, RerankConfig config) {
        List<String> ids = new ArrayList<>();
        for (SearchHit hit : window) {
            String id = null;
            if (config.idField != null && hit.hasSource()) {
                Object value = path(hit.getSourceAsMap(), config.idField);
                id = value == null ? null : String.valueOf(value);
            }
            ids.add(id != null ? id : hit.getId());
        }
        if (new HashSet<>(ids).size() < ids.size()) {
            // A search over several indices may hold one _id twice: tell them apart by index.
            for (int i = 0; i < ids.size(); i++) {
                ids.set(i, window.get(i).getIndex() + "/" + ids.get(i));
            }
        }
        return ids;
    }

    /** One candidate per hit, in first-stage order. */
    static List<Candidate> candidates(List<SearchHit> window, List<String> ids, RerankConfig config, boolean withVectors) {
        List<Candidate> out = new ArrayList<>(window.size());
        for (int i = 0; i < window.size(); i++) {
            SearchHit hit = window.get(i);
            Map<String, Object> source = hit.hasSource() ? hit.getSourceAsMap() : Map.of();
            float score = hit.getScore();
            Candidate.Builder candidate = Candidate.newBuilder()
                .setId(ids.get(i))
                .setFirstStageScore(Float.isNaN(score) ? 0f : score)
                .setProduct(product(source, config));
            if (withVectors) {
                Object vector = path(source, config.vectorField);
                if (vector instanceof List) {
                    for (Object value : (List<?>) vector) {
                        if (value instanceof Number) {
                            candidate.addEmbedding(((Number) value).floatValue());
                        }
                    }
                }
            }
            out.add(candidate.build());
        }
        return out;
    }

    /** The proto Product of one _source, through the field mapping and defaults. */
    static Product product(Map<String, Object> source, RerankConfig config) {
        Product.Builder product = Product.newBuilder();
        product.setTitle(text(source, "title", config, " "));
        product.setBrand(text(source, "brand", config, " "));
        Object category = path(source, config.fields.get("category"));
        if (category instanceof List) {
            for (Object level : (List<?>) category) {
                if (level != null && !String.valueOf(level).isBlank()) {
                    product.addCategory(String.valueOf(level));
                }
            }
        } else if (category != null && !String.valueOf(category).isBlank()) {
            product.addCategory(String.valueOf(category));
        } else if (config.defaults.get("category") != null) {
            product.addCategory(config.defaults.get("category"));
        }
        product.setColor(text(source, "color", config, " "));
        product.setBulletPoints(text(source, "bullet_points", config, "\n"));
        product.setDescription(text(source, "description", config, " "));
        return product.build();
    }

    private static String text(Map<String, Object> source, String field, RerankConfig config, String joiner) {
        Object value = path(source, config.fields.get(field));
        if (value instanceof List) {
            List<String> parts = new ArrayList<>();
            for (Object part : (List<?>) value) {
                if (part != null) {
                    parts.add(String.valueOf(part));
                }
            }
            value = String.join(joiner, parts);
        }
        if (value == null || String.valueOf(value).isEmpty()) {
            String fallback = config.defaults.get(field);
            return fallback == null ? "" : fallback;
        }
        return String.valueOf(value);
    }

    /** A dotted path into a _source map (an exact key with dots wins). */
    static Object path(Map<String, Object> source, String path) {
        if (path == null || source == null) {
            return null;
        }
        if (source.containsKey(path)) {
            return source.get(path);
        }
        Object node = source;
        for (String part : path.split("\\.")) {
            if (!(node instanceof Map)) {
                return null;
            }
            node = ((Map<?, ?>) node).get(part);
        }
        return node;
    }

    /**
     * The hits in the sidecar's order with its scores, followed by any window hit it left out
     * (first-stage order) and then the hits past the window, unchanged.
     */
    static List<SearchHit> reorder(List<SearchHit> hits, int windowSize, List<String> ids, RerankResponse response,
                                   boolean explain) {
        Map<String, Integer> position = new HashMap<>();
        for (int i = 0; i < windowSize; i++) {
            position.put(ids.get(i), i);
        }
        List<SearchHit> out = new ArrayList<>(hits.size());
        Set<Integer> placed = new HashSet<>();
        for (ScoredResult result : response.getResultsList()) {
            Integer at = position.get(result.getId());
            if (at == null || !placed.add(at)) {
                continue; // not ours or repeated: the contract says neither happens; never trust it to
            }
            SearchHit hit = hits.get(at);
            float firstStage = hit.getScore();
            setField(hit, FIRST_STAGE_SCORE, Float.isNaN(firstStage) ? null : firstStage);
            setField(hit, FIRST_STAGE_RANK, at);
            setField(hit, RELEVANCE_SCORE, result.getRelevanceScore());
            if (explain && result.hasExplanation()) {
                setField(hit, EXPLANATION, explanation(result.getExplanation()));
            }
            hit.score(result.getScore());
            out.add(hit);
        }
        for (int i = 0; i < windowSize; i++) {
            if (!placed.contains(i)) {
                out.add(hits.get(i));
            }
        }
        out.addAll(hits.subList(windowSize, hits.size()));
        return out;
    }

    private static void setField(SearchHit hit, String name, Object value) {
        if (value != null) {
            hit.setDocumentField(name, new DocumentField(name, List.of(value)));
        }
    }

    static Map<String, Object> explanation(Explanation e) {
        Map<String, Object> out = new LinkedHashMap<>();
        out.put("relevance", e.getRelevance());
        out.put("first_stage", e.getFirstStage());
        out.put("blended", e.getBlended());
        out.put("diversity_term", e.getDiversityTerm());
        out.put("first_stage_rank", e.getFirstStageRank());
        out.put("scored_rank", e.getScoredRank());
        out.put("final_rank", e.getFinalRank());
        out.put("reason", e.getReason());
        return out;
    }
}
