package shoprank.opensearch.plugin;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import java.util.Map;

import org.junit.jupiter.api.Test;

class KnnSlotsTest {
    static Map<String, Object> knn(String field, int k) {
        return Map.of("knn", Map.of(field, Map.of("vector", List.of(0.0), "k", k)));
    }

    static Map<String, Object> multiMatch(String text) {
        return Map.of("multi_match", Map.of("query", text, "fields", List.of("title")));
    }

    @SuppressWarnings("unchecked")
    static Map<String, Object> mutable(Map<String, Object> query) {
        return (Map<String, Object>) KnnSlots.copy(query);
    }

    @SuppressWarnings("unchecked")
    static Object at(Object node, Object... path) {
        for (Object step : path) {
            node = step instanceof Integer ? ((List<Object>) node).get((Integer) step) : ((Map<String, Object>) node).get(step);
        }
        return node;
    }

    @Test
    void aKnnClauseInsideHybridIsFilledAndTheTextClauseLeftAlone() {
        Map<String, Object> query = mutable(Map.of("hybrid", Map.of("queries", List.of(multiMatch("red shoes"), knn("vector", 50)))));
        List<KnnSlots.Slot> slots = KnnSlots.find(query, "vector");
        assertEquals(1, slots.size());
        assertFalse(slots.get(0).root);
        KnnSlots.fill(slots.get(0), "vector", List.of(0.25f, 0.5f));
        assertEquals(List.of(0.25f, 0.5f), at(query, "hybrid", "queries", 1, "knn", "vector", "vector"));
        assertEquals(50, at(query, "hybrid", "queries", 1, "knn", "vector", "k"));
        assertEquals("red shoes", at(query, "hybrid", "queries", 0, "multi_match", "query"));
    }

    @Test
    void knnClausesInsideBoolAreFoundInOrderAndOtherFieldsAreNot() {
        Map<String, Object> query = mutable(Map.of("bool", Map.of(
            "should", List.of(knn("vector", 10), knn("image_vector", 10)),
            "filter", List.of(Map.of("term", Map.of("brand", "acme"))),
            "must", List.of(Map.of("bool", Map.of("should", List.of(knn("vector", 20))))))));
        List<KnnSlots.Slot> slots = KnnSlots.find(query, "vector");
        assertEquals(2, slots.size());
        assertTrue(slots.stream().noneMatch(slot -> slot.root));
        assertTrue(KnnSlots.find(query, "title").isEmpty());
    }

    @Test
    void aKnnClauseWithTheClientsOwnVectorIsLeftAlone() {
        Map<String, Object> own = Map.of("knn", Map.of("vector", Map.of("vector", List.of(0.1, 0.2, 0.3), "k", 10)));
        Map<String, Object> query = mutable(Map.of("hybrid", Map.of("queries", List.of(multiMatch("mug"), own))));
        assertTrue(KnnSlots.find(query, "vector").isEmpty());
    }

    @Test
    void aTopLevelKnnClauseIsTheWholeQuery() {
        List<KnnSlots.Slot> slots = KnnSlots.find(mutable(knn("vector", 5)), "vector");
        assertEquals(1, slots.size());
        assertTrue(slots.get(0).root);
    }

    @Test
    void aNeuralClauseBecomesAKnnClauseKeepingItsOptions() {
        Map<String, Object> filter = Map.of("term", Map.of("brand", "acme"));
        Map<String, Object> query = mutable(Map.of("hybrid", Map.of("queries", List.of(
            multiMatch("mug"),
            Map.of("neural", Map.of("vector", Map.of("query_text", "blue mug", "k", 30, "filter", filter, "boost", 2.0,
                "model_id", "ignored")))))));
        List<KnnSlots.Slot> slots = KnnSlots.find(query, "vector");
        assertEquals("blue mug", slots.get(0).ownText);
        KnnSlots.fill(slots.get(0), "vector", List.of(1f, 0f));
        assertEquals(Map.of("knn", Map.of("vector", Map.of("vector", List.of(1f, 0f), "k", 30, "filter", filter, "boost", 2.0))),
            at(query, "hybrid", "queries", 1));
    }

    @Test
    void aNeuralClauseWithoutKGetsNeuralsDefault() {
        Map<String, Object> query = mutable(Map.of("neural", Map.of("vector", Map.of("query_text", "lamp"))));
        KnnSlots.fill(KnnSlots.find(query, "vector").get(0), "vector", List.of(1f));
        assertEquals(KnnSlots.NEURAL_DEFAULT_K, at(query, "knn", "vector", "k"));
    }

    @Test
    void aDroppedClauseIsMatchNoneInItsPlace() {
        Map<String, Object> query = mutable(Map.of("hybrid", Map.of("queries", List.of(multiMatch("red shoes"), knn("vector", 50)))));
        KnnSlots.drop(KnnSlots.find(query, "vector").get(0));
        assertEquals(Map.of(), at(query, "hybrid", "queries", 1, "match_none"));
        assertEquals(2, ((List<?>) at(query, "hybrid", "queries")).size()); // hybrid weights stay aligned
    }
}
