package shoprank.opensearch.plugin;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.UUID;

import io.grpc.Status;
import io.grpc.inprocess.InProcessChannelBuilder;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.opensearch.action.search.SearchRequest;
import org.opensearch.action.search.SearchResponse;
import org.opensearch.search.pipeline.PipelineProcessingContext;
import org.opensearch.search.pipeline.SearchRequestProcessor;
import org.opensearch.search.pipeline.SearchResponseProcessor;

/** ext.shoprank.query_id (#19): a UUID4 per search or the client's own, on reranked and failed-open pages alike. */
class QueryIdTest {
    private Channels channels;
    private FakeSidecar sidecar;
    private String name;

    @BeforeEach
    void start() throws Exception {
        name = "sidecar-qid-" + System.nanoTime() + ":1";
        sidecar = new FakeSidecar(name);
        channels = Channels.custom((target, executor) -> InProcessChannelBuilder.forName(target).executor(executor).build());
    }

    @AfterEach
    void stop() {
        sidecar.close();
        channels.close();
    }

    private Map<String, Object> search(Map<String, Object> ext) throws Exception {
        SearchRequestProcessor in = new WindowRequestProcessor.Factory().create(Map.of(), "t", null, false,
            new HashMap<>(Map.of("window", 20)), null);
        Map<String, Object> config = new HashMap<>(Map.of("targets", List.of(name), "deadline_ms", 2000));
        SearchResponseProcessor out = new RerankResponseProcessor.Factory(channels, System::currentTimeMillis, null, null)
            .create(Map.of(), "t", null, false, config, null);
        PipelineProcessingContext context = new PipelineProcessingContext();
        SearchRequest rewritten = in.processRequest(Fixtures.request("red shoes", 0, 10, ext), context);
        SearchResponse first = Fixtures.response(0, rewritten.source().size(), 40);
        return Fixtures.ext(out.processResponse(rewritten, first, context));
    }

    @Test
    void everySearchGetsItsOwnUuid4() throws Exception {
        String one = (String) search(null).get("query_id");
        String two = (String) search(null).get("query_id");
        assertEquals(4, UUID.fromString(one).version());
        assertNotEquals(one, two);
    }

    @Test
    void theClientsQueryIdIsKeptOnReRankedAndFailedOpenPages() throws Exception {
        assertEquals("shop-42", search(Map.of("query_id", "shop-42")).get("query_id"));
        sidecar.failWith = Status.UNAVAILABLE;
        Map<String, Object> failed = search(Map.of("query_id", "shop-43"));
        assertEquals(false, failed.get("reranked"));
        assertEquals("shop-43", failed.get("query_id"));
    }

    @Test
    void badUbiIdsAreTheCallersError() {
        IllegalArgumentException mail = assertThrows(IllegalArgumentException.class,
            () -> search(Map.of("client_id", "jane@example.com")));
        assertTrue(mail.getMessage().contains("pseudonymous"), mail.getMessage());
        assertThrows(IllegalArgumentException.class, () -> search(Map.of("query_id", "x".repeat(101))));
    }

    @Test
    void theUbiRecordHasUbisShapeWithStringAttributes() {
        UbiQueries ubi = new UbiQueries("ubi_queries", "shop", null, null);
        Map<String, Object> attributes = new HashMap<>();
        attributes.put("model_version", "ce-1");
        attributes.put("from", 10);
        attributes.put("fail_open_reason", null);
        Map<String, Object> doc = ubi.record("q-1", "red shoes", null, List.of("p3", "p1"), attributes);
        assertEquals("q-1", doc.get("query_id"));
        assertEquals("red shoes", doc.get("user_query"));
        assertEquals("shop", doc.get("application"));
        assertEquals(List.of("p3", "p1"), doc.get("query_response_hit_ids"));
        assertFalse(doc.containsKey("client_id"));
        assertTrue(((String) doc.get("timestamp")).endsWith("Z"), "ISO 8601 with a zone, as OpenSearch needs");
        assertEquals(Map.of("engine", "opensearch-plugin", "model_version", "ce-1", "from", "10"), doc.get("query_attributes"));
    }

    @Test
    void aUbiConfigWithoutAClientOrWithABadIndexIsRefused() {
        Config config = new Config("shoprank_rerank", new HashMap<>(Map.of("ubi", Map.of("index", "UBI"))));
        IllegalArgumentException error = assertThrows(IllegalArgumentException.class, () -> UbiQueries.parse(config, null, null));
        assertTrue(error.getMessage().contains("lower-case"), error.getMessage());
        assertEquals(null, UbiQueries.parse(new Config("shoprank_rerank", new HashMap<>()), null, null));
    }
}
