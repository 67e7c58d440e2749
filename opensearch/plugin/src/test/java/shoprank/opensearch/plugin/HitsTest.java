package shoprank.opensearch.plugin;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.HashMap;
import java.util.List;
import java.util.Map;

import org.junit.jupiter.api.Test;
import org.opensearch.search.SearchHit;

import shoprank.v1.Rerank.Candidate;
import shoprank.v1.Rerank.Product;
import shoprank.v1.Rerank.RerankResponse;
import shoprank.v1.Rerank.ScoredResult;

class HitsTest {
    private static RerankConfig config(Object... pairs) {
        Map<String, Object> map = new HashMap<>();
        map.put("targets", List.of("x:1"));
        for (int i = 0; i < pairs.length; i += 2) {
            map.put((String) pairs[i], pairs[i + 1]);
        }
        return RerankConfig.parse(map);
    }

    @Test
    void hitsBecomeCandidatesInFirstStageOrder() {
        List<SearchHit> window = List.of(Fixtures.hit(0, "products"), Fixtures.hit(1, "products"));
        RerankConfig config = config();
        List<Candidate> candidates = Hits.candidates(window, Hits.ids(window, config), config, true);
        assertEquals(2, candidates.size());
        Candidate first = candidates.get(0);
        assertEquals("p0", first.getId());
        assertEquals(100f, first.getFirstStageScore());
        assertEquals("product 0", first.getProduct().getTitle());
        assertEquals("b0", first.getProduct().getBrand());
        assertEquals(List.of("Shoes", "Running"), first.getProduct().getCategoryList());
        assertEquals("light\nfast", first.getProduct().getBulletPoints());
        assertEquals(List.of(0.5f, 1.0f), candidates.get(1).getEmbeddingList());
    }

    @Test
    void vectorsOnlyWhenAsked() {
        List<SearchHit> window = List.of(Fixtures.hit(1, "products"));
        RerankConfig config = config();
        assertEquals(0, Hits.candidates(window, Hits.ids(window, config), config, false).get(0).getEmbeddingCount());
    }

    @Test
    void fieldMappingNestedPathsAndDefaults() {
        RerankConfig config = config("fields", Map.of("title", "info.name", "category", "cat"),
            "defaults", Map.of("color", "n/a", "description", "none given"));
        Map<String, Object> source = Map.of("info", Map.of("name", "Mug"), "cat", "Kitchen", "description", "");
        Product product = Hits.product(source, config);
        assertEquals("Mug", product.getTitle());
        assertEquals(List.of("Kitchen"), product.getCategoryList());
        assertEquals("n/a", product.getColor());
        assertEquals("none given", product.getDescription());
        assertEquals("", product.getBrand());
    }

    @Test
    void idFieldAndDuplicateIdsAcrossIndices() {
        List<SearchHit> two = List.of(Fixtures.hit(3, "products-a"), Fixtures.hit(3, "products-b"));
        assertEquals(List.of("products-a/p3", "products-b/p3"), Hits.ids(two, config()));
        List<SearchHit> one = List.of(Fixtures.hit(3, "products"));
        assertEquals(List.of("product 3"), Hits.ids(one, config("id_field", "title")));
    }

    @Test
    void reorderFollowsTheSidecarAndKeepsTheFirstStageScore() {
        List<SearchHit> hits = new java.util.ArrayList<>();
        for (int i = 0; i < 4; i++) {
            hits.add(Fixtures.hit(i, "products"));
        }
        List<String> ids = List.of("p0", "p1", "p2");
        RerankResponse reply = RerankResponse.newBuilder()
            .addResults(ScoredResult.newBuilder().setId("p2").setScore(0.9f).setRelevanceScore(3f))
            .addResults(ScoredResult.newBuilder().setId("p0").setScore(0.5f))
            .addResults(ScoredResult.newBuilder().setId("unknown").setScore(0.4f))
            .build();
        List<SearchHit> out = Hits.reorder(hits, 3, ids, reply, false);
        // p1 was left out by the sidecar: after the ranked ones; p3 is past the window.
        assertEquals(List.of("p2", "p0", "p1", "p3"), out.stream().map(SearchHit::getId).collect(java.util.stream.Collectors.toList()));
        assertEquals(0.9f, out.get(0).getScore());
        assertEquals(List.of(98f), out.get(0).field(Hits.FIRST_STAGE_SCORE).getValues());
        assertEquals(List.of(2), out.get(0).field(Hits.FIRST_STAGE_RANK).getValues());
        assertEquals(List.of(3f), out.get(0).field(Hits.RELEVANCE_SCORE).getValues());
        assertEquals(97f, out.get(3).getScore());
        assertTrue(out.get(3).field(Hits.FIRST_STAGE_SCORE) == null);
    }
}
