package shoprank.opensearch.plugin;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;

import java.util.List;
import java.util.Map;

import org.junit.jupiter.api.Test;
import org.opensearch.index.query.QueryBuilders;

class QueryTextTest {
    @Test
    void multiMatchText() {
        assertEquals("red shoes", QueryText.of(QueryBuilders.multiMatchQuery("red shoes", "title", "brand")));
    }

    @Test
    void matchTextInsideBool() {
        assertEquals("blue mug", QueryText.of(QueryBuilders.boolQuery()
            .filter(QueryBuilders.termQuery("brand.keyword", "acme"))
            .must(QueryBuilders.matchQuery("title", "blue mug"))));
    }

    @Test
    void matchShortFormAndHybridFromJson() {
        assertEquals("lamp", QueryText.find(Map.of("match", Map.of("title", "lamp"))));
        Object hybrid = Map.of("hybrid", Map.of("queries", List.of(
            Map.of("knn", Map.of("vector", Map.of("vector", List.of(0.1, 0.2), "k", 10))),
            Map.of("multi_match", Map.of("query", "desk lamp", "fields", List.of("title"))))));
        assertEquals("desk lamp", QueryText.find(hybrid));
    }

    @Test
    void noTextClauseIsNull() {
        assertNull(QueryText.of(QueryBuilders.termQuery("brand.keyword", "acme")));
        assertNull(QueryText.of(null));
    }
}
