package shoprank.opensearch.plugin;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.HashMap;
import java.util.List;
import java.util.Map;

import org.junit.jupiter.api.Test;

import shoprank.v1.Rerank.DiversityFacet;
import shoprank.v1.Rerank.DiversityMethod;
import shoprank.v1.Rerank.DiversityOptions;

class ConfigTest {
    private static Map<String, Object> config(Object... pairs) {
        Map<String, Object> map = new HashMap<>();
        map.put("targets", List.of("127.0.0.1:50051"));
        for (int i = 0; i < pairs.length; i += 2) {
            map.put((String) pairs[i], pairs[i + 1]);
        }
        return map;
    }

    private static String error(Map<String, Object> config) {
        return assertThrows(IllegalArgumentException.class, () -> RerankConfig.parse(config)).getMessage();
    }

    @Test
    void defaults() {
        RerankConfig config = RerankConfig.parse(config());
        assertEquals(List.of("127.0.0.1:50051"), config.targets);
        assertEquals(300, config.deadlineMs);
        assertEquals("title", config.fields.get("title"));
        assertEquals("vector", config.vectorField);
        assertNull(config.blendWeight);
        assertNull(config.diversity.method);
        assertFalse(config.sendVectors(null));
        assertTrue(config.sendVectors("dpp"));
    }

    @Test
    void fullConfig() {
        RerankConfig config = RerankConfig.parse(config(
            "targets", List.of("a:1", "b:2"), "deadline_ms", 150, "fields", Map.of("title", "name"),
            "defaults", Map.of("brand", "unknown"), "send_vectors", false, "blend_weight", 0.2,
            "diversity", Map.of("method", "xquad", "strength", 0.4, "max_per_brand", 2, "facets", List.of("brand")),
            "breaker", Map.of("failures", 5, "backoff_ms", 100)));
        assertEquals(List.of("a:1", "b:2"), config.targets);
        assertEquals("name", config.fields.get("title"));
        assertEquals("unknown", config.defaults.get("brand"));
        assertFalse(config.sendVectors("dpp"));
        assertEquals(0.2f, config.blendWeight);
        assertEquals(5, config.breaker.failures);
        DiversityOptions options = config.diversity.toProto(RequestOverrides.NONE, 10);
        assertEquals(DiversityMethod.DIVERSITY_METHOD_XQUAD, options.getMethod());
        assertEquals(0.4f, options.getStrength());
        assertEquals(2, options.getMaxPerBrand());
        assertFalse(options.hasMaxPerCategory());
        assertEquals(List.of(DiversityFacet.DIVERSITY_FACET_BRAND), options.getFacetsList());
        assertEquals(10, options.getPageSize());
    }

    @Test
    void requestOverridesWinOverThePipeline() {
        RerankConfig config = RerankConfig.parse(config("diversity", Map.of("method", "dpp", "strength", 0.3)));
        RequestOverrides overrides = RequestOverrides.parse(Map.of("method", "mmr", "strength", 0.9, "explain", true));
        DiversityOptions options = config.diversity.toProto(overrides, 5);
        assertEquals(DiversityMethod.DIVERSITY_METHOD_MMR, options.getMethod());
        assertEquals(0.9f, options.getStrength(), 1e-6);
        assertTrue(overrides.explain);
    }

    @Test
    void badConfigsSayWhatToDo() {
        Map<String, Object> none = new HashMap<>();
        assertTrue(error(none).contains("targets"));
        assertTrue(error(config("targets", List.of("localhost"))).contains("host:port"));
        assertTrue(error(config("deadline", 10)).contains("unknown key"));
        assertTrue(error(config("diversity", Map.of("method", "random"))).contains("none, mmr, xquad or dpp"));
        assertTrue(error(config("diversity", Map.of("facets", List.of("color")))).contains("category and/or brand"));
        assertTrue(error(config("blend_weight", 1.5)).contains("[0, 1]"));
        assertTrue(error(config("fields", Map.of("price", "price"))).contains("allowed"));
        assertTrue(error(config("deadline_ms", 0)).contains("deadline_ms"));
    }

    @Test
    void badExtIsRefused() {
        assertThrows(IllegalArgumentException.class, () -> RequestOverrides.parse(Map.of("methd", "mmr")));
        assertThrows(IllegalArgumentException.class, () -> RequestOverrides.parse(Map.of("strength", 2)));
        assertThrows(IllegalArgumentException.class, () -> RequestOverrides.parse(Map.of("rerank", "no")));
    }
}
