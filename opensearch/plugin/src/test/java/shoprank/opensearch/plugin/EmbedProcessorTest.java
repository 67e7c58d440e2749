package shoprank.opensearch.plugin;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;

import io.grpc.Status;
import io.grpc.inprocess.InProcessChannelBuilder;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.opensearch.OpenSearchStatusException;
import org.opensearch.action.search.SearchRequest;
import org.opensearch.core.rest.RestStatus;
import org.opensearch.search.builder.SearchSourceBuilder;
import org.opensearch.search.pipeline.PipelineProcessingContext;
import org.opensearch.search.pipeline.SearchRequestProcessor;

/** shoprank_embed against an in-process Embed service; queries stand in as JSON (JsonQuery). */
class EmbedProcessorTest {
    private Channels channels;
    private FakeEmbedder sidecar;
    private final AtomicLong clock = new AtomicLong(1_000);
    private final AtomicInteger versionLookups = new AtomicInteger();
    private volatile String indexVersion = "bi-fake-1";
    private String name;

    @BeforeEach
    void start() throws Exception {
        name = "embedder-" + System.nanoTime() + ":1";
        sidecar = new FakeEmbedder(name);
        channels = Channels.custom((target, executor) -> InProcessChannelBuilder.forName(target).executor(executor).build());
    }

    @AfterEach
    void stop() {
        sidecar.close();
        channels.close();
    }

    private SearchRequestProcessor processor(Map<String, Object> extra) throws Exception {
        Map<String, Object> config = new HashMap<>(extra);
        config.putIfAbsent("targets", List.of(name));
        config.putIfAbsent("deadline_ms", 2000);
        EmbedRequestProcessor.IndexVersions versions = (request, listener) -> {
            versionLookups.incrementAndGet();
            listener.onResponse(indexVersion);
        };
        return new EmbedRequestProcessor.Factory(channels, clock::get, null, null, JsonQuery::new, versions)
            .create(Map.of(), "t", null, false, config, null);
    }

    private static SearchRequest request(Map<String, Object> query, Map<String, Object> ext) {
        SearchSourceBuilder source = new SearchSourceBuilder().query(new JsonQuery(query)).size(10);
        if (ext != null) {
            source.ext(List.of(new ShoprankExt(ext)));
        }
        return new SearchRequest("products").source(source);
    }

    private static Map<String, Object> hybrid(String text) {
        return Map.of("hybrid", Map.of("queries", List.of(KnnSlotsTest.multiMatch(text), KnnSlotsTest.knn("vector", 100))));
    }

    private static Object query(SearchRequest request) {
        return ((JsonQuery) request.source().query()).json;
    }

    @Test
    void aTextOnlyHybridGetsItsKnnVectorFromOneEmbedCall() throws Exception {
        PipelineProcessingContext context = new PipelineProcessingContext();
        SearchRequest out = processor(Map.of()).processRequest(request(hybrid("red shoes"), null), context);
        assertEquals(FakeEmbedder.vectorOf("red shoes", 0), KnnSlotsTest.at(query(out), "hybrid", "queries", 1, "knn", "vector", "vector"));
        assertEquals(1, sidecar.requests.size());
        assertEquals(List.of("red shoes"), sidecar.requests.get(0).getTextsList());
        assertEquals("bi-fake-1", sidecar.requests.get(0).getExpectedModelVersion()); // the index's recorded model
        @SuppressWarnings("unchecked")
        Map<String, Object> state = (Map<String, Object>) context.getAttribute(EmbedRequestProcessor.STATE);
        assertEquals(true, state.get("embedded"));
        assertEquals(true, state.get("version_checked"));
        assertEquals("red shoes", context.getAttribute(WindowRequestProcessor.QUERY_TEXT));
    }

    @Test
    void extQueryTextWinsAndNeuralClausesBringTheirOwnTextInTheSameCall() throws Exception {
        Map<String, Object> query = Map.of("bool", Map.of("should", List.of(
            KnnSlotsTest.multiMatch("mug"),
            KnnSlotsTest.knn("vector", 10),
            Map.of("neural", Map.of("vector", Map.of("query_text", "blue coffee mug", "k", 5))))));
        SearchRequest out = processor(Map.of()).processRequest(request(query, Map.of("query_text", "large mug")),
            new PipelineProcessingContext());
        assertEquals(List.of("large mug", "blue coffee mug"), sidecar.requests.get(0).getTextsList());
        assertEquals(FakeEmbedder.vectorOf("large mug", 0), KnnSlotsTest.at(query(out), "bool", "should", 1, "knn", "vector", "vector"));
        assertEquals(FakeEmbedder.vectorOf("blue coffee mug", 1),
            KnnSlotsTest.at(query(out), "bool", "should", 2, "knn", "vector", "vector"));
    }

    @Test
    void aKnnClauseWithoutAnyTextIsTheCallersError() throws Exception {
        SearchRequestProcessor processor = processor(Map.of());
        IllegalArgumentException error = assertThrows(IllegalArgumentException.class,
            () -> processor.processRequest(request(KnnSlotsTest.knn("vector", 10), null), new PipelineProcessingContext()));
        assertTrue(error.getMessage().contains("ext.shoprank.query_text"), error.getMessage());
        assertTrue(sidecar.requests.isEmpty());
    }

    @Test
    void aQueryWithoutKnnOnTheFieldPassesUntouchedWithoutACall() throws Exception {
        Map<String, Object> query = Map.of("bool", Map.of("should", List.of(KnnSlotsTest.multiMatch("mug"),
            KnnSlotsTest.knn("image_vector", 10))));
        SearchRequest in = request(query, null);
        SearchRequest out = processor(Map.of()).processRequest(in, new PipelineProcessingContext());
        assertEquals(query, query(out));
        assertTrue(sidecar.requests.isEmpty());
    }

    @Test
    void aDownSidecarTurnsAHybridsKnnIntoMatchNoneAndSaysSo() throws Exception {
        sidecar.failWith = Status.UNAVAILABLE.withDescription("connection refused");
        PipelineProcessingContext context = new PipelineProcessingContext();
        SearchRequest out = processor(Map.of()).processRequest(request(hybrid("red shoes"), null), context);
        assertEquals(Map.of(), KnnSlotsTest.at(query(out), "hybrid", "queries", 1, "match_none"));
        @SuppressWarnings("unchecked")
        Map<String, Object> state = (Map<String, Object>) context.getAttribute(EmbedRequestProcessor.STATE);
        assertEquals(false, state.get("embedded"));
        assertTrue(((String) state.get("fail_open_reason")).startsWith("unavailable: "), String.valueOf(state));
        assertEquals(1, state.get("knn_dropped"));
    }

    @Test
    void aDownSidecarFailsAKnnOnlyQueryWith503() throws Exception {
        sidecar.failWith = Status.UNAVAILABLE.withDescription("connection refused");
        SearchRequestProcessor processor = processor(Map.of());
        OpenSearchStatusException error = assertThrows(OpenSearchStatusException.class, () -> processor.processRequest(
            request(KnnSlotsTest.knn("vector", 10), Map.of("query_text", "mug")), new PipelineProcessingContext()));
        assertEquals(RestStatus.SERVICE_UNAVAILABLE, error.status());
        assertTrue(error.getMessage().contains("ignore_failure"), error.getMessage());
    }

    @Test
    void withoutDroppingADownSidecarFailsTheHybridToo() throws Exception {
        sidecar.failWith = Status.DEADLINE_EXCEEDED;
        SearchRequestProcessor processor = processor(Map.of("drop_knn_on_failure", false));
        OpenSearchStatusException error = assertThrows(OpenSearchStatusException.class,
            () -> processor.processRequest(request(hybrid("red shoes"), null), new PipelineProcessingContext()));
        assertEquals(RestStatus.SERVICE_UNAVAILABLE, error.status());
    }

    @Test
    void aModelMismatchIsA409ThatSaysToReindex() throws Exception {
        sidecar.failWith = Status.FAILED_PRECONDITION.withDescription("the index was built with bi-encoder 'old'");
        SearchRequestProcessor processor = processor(Map.of());
        OpenSearchStatusException error = assertThrows(OpenSearchStatusException.class,
            () -> processor.processRequest(request(hybrid("red shoes"), null), new PipelineProcessingContext()));
        assertEquals(RestStatus.CONFLICT, error.status());
        assertTrue(error.getMessage().contains("reindex"), error.getMessage());
    }

    @Test
    void mismatchesDoNotOpenTheBreakerButOutagesDo() throws Exception {
        EmbedRequestProcessor processor = (EmbedRequestProcessor) processor(Map.of("breaker", Map.of("failures", 2)));
        sidecar.failWith = Status.FAILED_PRECONDITION.withDescription("another model");
        for (int i = 0; i < 3; i++) {
            assertThrows(OpenSearchStatusException.class,
                () -> processor.processRequest(request(hybrid("mug"), null), new PipelineProcessingContext()));
        }
        assertEquals(List.of(CircuitBreaker.State.CLOSED), processor.pool.states()); // a healthy sidecar, a wrong index
        sidecar.failWith = Status.UNAVAILABLE;
        for (int i = 0; i < 2; i++) {
            processor.processRequest(request(hybrid("mug"), null), new PipelineProcessingContext());
        }
        assertEquals(List.of(CircuitBreaker.State.OPEN), processor.pool.states());
        PipelineProcessingContext context = new PipelineProcessingContext();
        processor.processRequest(request(hybrid("mug"), null), context);
        @SuppressWarnings("unchecked")
        Map<String, Object> state = (Map<String, Object>) context.getAttribute(EmbedRequestProcessor.STATE);
        assertTrue(((String) state.get("fail_open_reason")).startsWith("circuit_open"), String.valueOf(state));
        assertEquals(5, sidecar.requests.size()); // the open breaker made no call
    }

    @Test
    void aConfiguredModelVersionIsSentWithoutReadingTheIndex() throws Exception {
        processor(Map.of("model_version", "bi-pinned")).processRequest(request(hybrid("mug"), null), new PipelineProcessingContext());
        assertEquals("bi-pinned", sidecar.requests.get(0).getExpectedModelVersion());
        assertEquals(0, versionLookups.get());
    }

    @Test
    void anIndexWithoutARecordedVersionIsEmbeddedUnchecked() throws Exception {
        indexVersion = null;
        PipelineProcessingContext context = new PipelineProcessingContext();
        processor(Map.of()).processRequest(request(hybrid("mug"), null), context);
        assertFalse(sidecar.requests.get(0).hasExpectedModelVersion());
        @SuppressWarnings("unchecked")
        Map<String, Object> state = (Map<String, Object>) context.getAttribute(EmbedRequestProcessor.STATE);
        assertEquals(false, state.get("version_checked"));
    }

    @Test
    void badConfigNamesTheKey() {
        IllegalArgumentException error = assertThrows(IllegalArgumentException.class, () -> processor(Map.of("feild", "v")));
        assertTrue(error.getMessage().contains("feild") && error.getMessage().contains("allowed"), error.getMessage());
        assertThrows(IllegalArgumentException.class, () -> processor(Map.of("targets", List.of("no-port"))));
    }

    @Test
    void indicesBuiltWithDifferentModelsDisagree() {
        Map<String, Object> a = Map.of("_meta", Map.of("shoprank", Map.of("bi_encoder_version", "bi-a")));
        Map<String, Object> b = Map.of("_meta", Map.of("shoprank", Map.of("bi_encoder_version", "bi-b")));
        assertEquals("bi-a", IndexModelVersions.recorded(a));
        assertNull(IndexModelVersions.recorded(Map.of("properties", Map.of())));
        assertNull(IndexModelVersions.agreed(Map.of()));
        IllegalArgumentException error = assertThrows(IllegalArgumentException.class, () -> IndexModelVersions.agreed(Map.of(
            "products-1", mapping(a), "products-2", mapping(b))));
        assertTrue(error.getMessage().contains("bi-a") && error.getMessage().contains("bi-b"), error.getMessage());
        assertEquals("bi-a", IndexModelVersions.agreed(Map.of("products-1", mapping(a), "products-2", mapping(a))));
    }

    private static org.opensearch.cluster.metadata.MappingMetadata mapping(Map<String, Object> source) {
        return new org.opensearch.cluster.metadata.MappingMetadata("_doc", source);
    }
}
