package shoprank.opensearch.plugin;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.Collections;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.atomic.AtomicLong;

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
import org.opensearch.search.sort.SortOrder;

import shoprank.v1.Rerank.DiversityMethod;
import shoprank.v1.Rerank.RerankRequest;

/** The processors end to end against an in-process fake sidecar (reverses the window). */
class RerankProcessorTest {
    private static final int TOTAL = 50;
    private static final int WINDOW = 30;

    private Channels channels;
    private FakeSidecar sidecar;
    private final AtomicLong clock = new AtomicLong(1_000);
    private String name;

    @BeforeEach
    void start() throws Exception {
        name = "sidecar-" + System.nanoTime() + ":1";
        sidecar = new FakeSidecar(name);
        channels = Channels.custom((target, executor) -> InProcessChannelBuilder.forName(target).executor(executor).build());
    }

    @AfterEach
    void stop() {
        sidecar.close();
        channels.close();
    }

    private SearchRequestProcessor requestSide(int window) throws Exception {
        Map<String, Object> config = new HashMap<>(Map.of("window", window));
        return new WindowRequestProcessor.Factory().create(Map.of(), "t", null, false, config, null);
    }

    private SearchResponseProcessor responseSide(Map<String, Object> extra, String... targets) throws Exception {
        Map<String, Object> config = new HashMap<>(extra);
        config.put("targets", targets.length == 0 ? List.of(name) : List.of(targets));
        config.putIfAbsent("deadline_ms", 2000);
        config.putIfAbsent("breaker", Map.of("failures", 3, "backoff_ms", 1000));
        return new RerankResponseProcessor.Factory(channels, clock::get, null, null).create(Map.of(), "t", null, false, config, null);
    }

    /** One search through both sides, OpenSearch answering what the (rewritten) request asks for. */
    private static SearchResponse search(SearchRequestProcessor in, SearchResponseProcessor out, SearchRequest request)
            throws Exception {
        PipelineProcessingContext context = new PipelineProcessingContext();
        SearchRequest rewritten = in.processRequest(request, context);
        SearchResponse first = Fixtures.response(Math.max(0, rewritten.source().from()), rewritten.source().size(), TOTAL);
        return out.processResponse(rewritten, first, context);
    }

    private static List<String> range(int from, int to) {
        List<String> ids = new ArrayList<>();
        for (int i = from; i < to; i++) {
            ids.add("p" + i);
        }
        return ids;
    }

    private static List<String> reversedWindow() {
        List<String> ids = range(0, WINDOW);
        Collections.reverse(ids);
        return ids;
    }

    @Test
    void rerankedPageIsASliceOfTheSidecarsRankingOfTheWindow() throws Exception {
        SearchResponse response = search(requestSide(WINDOW), responseSide(Map.of()), Fixtures.request("red shoes", 10, 10, null));
        assertEquals(reversedWindow().subList(10, 20), Fixtures.ids(response));
        assertEquals(1, sidecar.requests.size());
        RerankRequest sent = sidecar.requests.get(0);
        assertEquals("red shoes", sent.getQuery());
        assertEquals(WINDOW, sent.getCandidatesCount());
        assertEquals(0, sent.getTopK());
        assertEquals(10, sent.getOptions().getDiversity().getPageSize());
        assertEquals(990f, response.getHits().getHits()[0].getScore());
        assertEquals(List.of(81f), response.getHits().getHits()[0].field(Hits.FIRST_STAGE_SCORE).getValues());
        assertEquals(TOTAL, response.getHits().getTotalHits().value);
        Map<String, Object> ext = Fixtures.ext(response);
        assertEquals(true, ext.get("reranked"));
        assertEquals("fake-1", ext.get("model_version"));
        assertEquals("none", ext.get("diversity_method"));
        assertEquals(List.of("a note"), ext.get("diversity_notes"));
        assertEquals(null, ext.get("fail_open_reason"));
        assertEquals(WINDOW, ext.get("window"));
        assertNotNull(((Map<?, ?>) ext.get("timings")).get("sidecar"));
    }

    @Test
    void pagesOneToThreeComeFromOneRanking() throws Exception {
        SearchRequestProcessor in = requestSide(WINDOW);
        SearchResponseProcessor out = responseSide(Map.of());
        List<String> all = new ArrayList<>();
        for (int page = 0; page < 3; page++) {
            all.addAll(Fixtures.ids(search(in, out, Fixtures.request("red shoes", page * 10, 10, null))));
        }
        assertEquals(reversedWindow(), all);
    }

    @Test
    void pageBeyondTheWindowPassesThroughInFirstStageOrder() throws Exception {
        SearchResponse response = search(requestSide(WINDOW), responseSide(Map.of()), Fixtures.request("red shoes", 30, 10, null));
        assertEquals(range(30, 40), Fixtures.ids(response));
        assertEquals(0, sidecar.requests.size());
        assertTrue(((String) Fixtures.ext(response).get("fail_open_reason")).startsWith("beyond_window"));
    }

    @Test
    void pageStraddlingTheWindowEdgeContinuesInFirstStageOrder() throws Exception {
        SearchResponse response = search(requestSide(WINDOW), responseSide(Map.of()), Fixtures.request("red shoes", 25, 10, null));
        List<String> expected = new ArrayList<>(reversedWindow().subList(25, 30));
        expected.addAll(range(30, 35));
        assertEquals(expected, Fixtures.ids(response));
    }

    @Test
    void overridesAndDiversityReachTheSidecar() throws Exception {
        Map<String, Object> pipeline = Map.of("diversity", Map.of("method", "dpp", "max_per_brand", 2), "blend_weight", 0.25);
        Map<String, Object> ext = Map.of("method", "mmr", "strength", 0.7, "explain", true, "query_text", "running shoes");
        SearchResponse response = search(requestSide(WINDOW), responseSide(pipeline), Fixtures.request("ignored", 0, 5, ext));
        RerankRequest sent = sidecar.requests.get(0);
        assertEquals("running shoes", sent.getQuery());
        assertEquals(DiversityMethod.DIVERSITY_METHOD_MMR, sent.getOptions().getDiversity().getMethod());
        assertEquals(0.7f, sent.getOptions().getDiversity().getStrength(), 1e-6);
        assertEquals(2, sent.getOptions().getDiversity().getMaxPerBrand());
        assertEquals(0.25f, sent.getOptions().getBlendWeight());
        assertTrue(sent.getOptions().getExplain());
        assertTrue(sent.getCandidates(1).getEmbeddingCount() > 0, "mmr diversifies on embeddings: vectors are sent");
        Map<?, ?> explanation = (Map<?, ?>) response.getHits().getHits()[0].field(Hits.EXPLANATION).getValue();
        assertEquals("moved", explanation.get("reason"));
    }

    @Test
    void rerankOffIsFirstStageWithoutACall() throws Exception {
        SearchRequest request = Fixtures.request("red shoes", 0, 10, Map.of("rerank", false));
        SearchResponse response = search(requestSide(WINDOW), responseSide(Map.of()), request);
        assertEquals(range(0, 10), Fixtures.ids(response));
        assertEquals(10, request.source().size(), "the request is left as asked");
        assertEquals(0, sidecar.requests.size());
        assertTrue(((String) Fixtures.ext(response).get("fail_open_reason")).startsWith("rerank_off"));
    }

    @Test
    void sortedSearchIsNotReranked() throws Exception {
        SearchRequest request = Fixtures.request("red shoes", 0, 10, null);
        request.source().sort("price", SortOrder.ASC);
        SearchResponse response = search(requestSide(WINDOW), responseSide(Map.of()), request);
        assertEquals(range(0, 10), Fixtures.ids(response));
        assertTrue(((String) Fixtures.ext(response).get("fail_open_reason")).startsWith("unsupported"));
    }

    private void assertFailOpen(SearchResponse response, String reasonPrefix) {
        assertEquals(range(10, 20), Fixtures.ids(response), "first-stage order, the page as without the plugin");
        assertEquals(90f, response.getHits().getHits()[0].getScore(), "first-stage score untouched");
        Map<String, Object> ext = Fixtures.ext(response);
        assertEquals(false, ext.get("reranked"));
        String reason = (String) ext.get("fail_open_reason");
        assertTrue(reason.startsWith(reasonPrefix), reason);
    }

    private SearchResponse page2(SearchResponseProcessor out) throws Exception {
        return search(requestSide(WINDOW), out, Fixtures.request("red shoes", 10, 10, null));
    }

    @Test
    void sidecarDownFailsOpen() throws Exception {
        assertFailOpen(page2(responseSide(Map.of(), "nobody-listens:1")), "unavailable");
    }

    @Test
    void overloadedSidecarFailsOpen() throws Exception {
        sidecar.failWith = Status.RESOURCE_EXHAUSTED.withDescription("queue full");
        assertFailOpen(page2(responseSide(Map.of())), "overloaded");
    }

    @Test
    void slowSidecarFailsOpenAtTheDeadline() throws Exception {
        sidecar.sleepMs = 1000;
        assertFailOpen(page2(responseSide(Map.of("deadline_ms", 50))), "deadline_exceeded");
    }

    @Test
    void anyOtherErrorFailsOpen() throws Exception {
        sidecar.failWith = Status.INTERNAL.withDescription("boom");
        assertFailOpen(page2(responseSide(Map.of())), "error");
        sidecar.failWith = Status.INVALID_ARGUMENT.withDescription("too many candidates");
        assertFailOpen(page2(responseSide(Map.of())), "rejected");
    }

    @Test
    void noQueryTextFailsOpen() throws Exception {
        SearchRequest request = Fixtures.request("x", 10, 10, null);
        request.source().query(org.opensearch.index.query.QueryBuilders.termQuery("brand.keyword", "b1"));
        assertFailOpen(search(requestSide(WINDOW), responseSide(Map.of()), request), "no_query_text");
        assertEquals(0, sidecar.requests.size());
    }

    @Test
    void breakerSkipsADeadSidecarThenProbesAndRecovers() throws Exception {
        String later = "later-" + System.nanoTime() + ":1";
        SearchResponseProcessor out = responseSide(Map.of(), later);
        for (int i = 0; i < 3; i++) {
            assertFailOpen(page2(out), "unavailable");
        }
        assertFailOpen(page2(out), "circuit_open");
        try (FakeSidecar back = new FakeSidecar(later)) {
            assertFailOpen(page2(out), "circuit_open"); // still inside the back-off
            assertEquals(0, back.requests.size());
            clock.addAndGet(1000);
            SearchResponse probe = page2(out);
            assertEquals(true, Fixtures.ext(probe).get("reranked"));
            assertEquals(reversedWindow().subList(10, 20), Fixtures.ids(probe));
            assertEquals(1, back.requests.size());
        }
    }

    @Test
    void roundRobinRoutesAroundAnOpenBreaker() throws Exception {
        SearchResponseProcessor out = responseSide(Map.of(), name, "nobody-listens:2");
        int reranked = 0;
        for (int i = 0; i < 20; i++) {
            if (Boolean.TRUE.equals(Fixtures.ext(page2(out)).get("reranked"))) {
                reranked++;
            }
        }
        // The dead one fails 3 times, then its breaker is open and every search goes to the live one.
        assertEquals(17, reranked);
        assertEquals(17, sidecar.requests.size());
    }

    @Test
    void channelsAreSharedAcrossProcessors() throws Exception {
        responseSide(Map.of());
        responseSide(Map.of());
        responseSide(Map.of(), name, "other:1");
        assertEquals(2, channels.size());
    }

    @Test
    void withoutTheRequestSideTheReturnedHitsAreTheWindow() throws Exception {
        SearchRequest request = Fixtures.request("red shoes", 0, 5, null);
        SearchResponse response = responseSide(Map.of()).processResponse(request, Fixtures.response(0, 5, TOTAL),
            new PipelineProcessingContext());
        assertEquals(List.of("p4", "p3", "p2", "p1", "p0"), Fixtures.ids(response));
    }
}
