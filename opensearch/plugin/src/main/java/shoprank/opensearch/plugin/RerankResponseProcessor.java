package shoprank.opensearch.plugin;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.function.Consumer;
import java.util.function.LongSupplier;

import org.apache.logging.log4j.LogManager;
import org.apache.logging.log4j.Logger;
import org.opensearch.action.search.SearchRequest;
import org.opensearch.action.search.SearchResponse;
import org.opensearch.action.search.SearchResponseSections;
import org.opensearch.action.support.ContextPreservingActionListener;
import org.opensearch.common.util.concurrent.ThreadContext;
import org.opensearch.core.action.ActionListener;
import org.opensearch.search.SearchExtBuilder;
import org.opensearch.search.SearchHit;
import org.opensearch.search.SearchHits;
import org.opensearch.search.pipeline.AbstractProcessor;
import org.opensearch.search.pipeline.PipelineProcessingContext;
import org.opensearch.search.pipeline.Processor;
import org.opensearch.search.pipeline.SearchResponseProcessor;
import org.opensearch.search.profile.SearchProfileShardResults;

import shoprank.v1.Rerank.Candidate;
import shoprank.v1.Rerank.RerankOptions;
import shoprank.v1.Rerank.RerankRequest;
import shoprank.v1.Rerank.RerankResponse;
import shoprank.v1.Rerank.StageTimings;

/**
 * {@code shoprank_rerank}: sends the window's hits to the sidecar in one Rerank call, rewrites
 * the hits' order and {@code _score} (the first-stage score stays in the hit's fields) and cuts the
 * page the request asked for. Whatever goes wrong, the search still answers: the hits in
 * first-stage order, the page cut as without the plugin, {@code ext.shoprank.reranked: false} and
 * the reason.
 */
final class RerankResponseProcessor extends AbstractProcessor implements SearchResponseProcessor {
    private static final Logger LOG = LogManager.getLogger(RerankResponseProcessor.class);

    final RerankConfig config;
    final SidecarPool pool;
    final UbiQueries ubi; // null: no UBI records
    private final LongSupplier clockNanos;
    private final ThreadContext threadContext;

    /** What one search carries to its answer: its UBI ids, its text and what shoprank_embed did. */
    static final class Trace {
        final Object embed;
        String queryId = UUID.randomUUID().toString();
        String clientId;
        String text;

        Trace(Object embed) {
            this.embed = embed;
        }
    }

    RerankResponseProcessor(String tag, String description, boolean ignoreFailure, RerankConfig config, SidecarPool pool,
                            UbiQueries ubi, LongSupplier clockNanos, ThreadContext threadContext) {
        super(tag, description, ignoreFailure);
        this.config = config;
        this.pool = pool;
        this.ubi = ubi;
        this.clockNanos = clockNanos;
        this.threadContext = threadContext;
    }

    @Override
    public String getType() {
        return RerankConfig.TYPE;
    }

    @Override
    public SearchResponse processResponse(SearchRequest request, SearchResponse response) throws Exception {
        return processResponse(request, response, new PipelineProcessingContext());
    }

    @Override
    public SearchResponse processResponse(SearchRequest request, SearchResponse response, PipelineProcessingContext context)
            throws Exception {
        CompletableFuture<SearchResponse> done = new CompletableFuture<>();
        rerank(request, response, context, done::complete);
        try {
            // The call carries its own deadline; the margin covers the callback hop only.
            return done.get(config.deadlineMs + 5_000L, TimeUnit.MILLISECONDS);
        } catch (java.util.concurrent.TimeoutException e) {
            PagePlan plan = (PagePlan) context.getAttribute(WindowRequestProcessor.PLAN);
            List<SearchHit> hits = new ArrayList<>(Arrays.asList(response.getHits().getHits()));
            PagePlan page = plan != null ? plan : PagePlan.of(0, hits.size(), Math.max(1, hits.size()));
            Trace trace = new Trace(context.getAttribute(EmbedRequestProcessor.STATE));
            RequestOverrides overrides = (RequestOverrides) context.getAttribute(WindowRequestProcessor.OVERRIDES);
            if (overrides != null && overrides.queryId != null) {
                trace.queryId = overrides.queryId;
            }
            return failOpen(response, hits, page, trace, "deadline_exceeded: no answer within the deadline",
                clockNanos.getAsLong());
        }
    }

    @Override
    public void processResponseAsync(SearchRequest request, SearchResponse response, PipelineProcessingContext context,
                                     ActionListener<SearchResponse> listener) {
        // The rest of the search continues on a gRPC callback thread: carry the request's thread context there.
        ActionListener<SearchResponse> next = threadContext == null ? listener
            : ContextPreservingActionListener.wrapPreservingContext(listener, threadContext);
        rerank(request, response, context, next::onResponse);
    }

    /** Reranks or fails open; {@code done} hears exactly once and never an exception. */
    void rerank(SearchRequest request, SearchResponse response, PipelineProcessingContext context,
                Consumer<SearchResponse> done) {
        long started = clockNanos.getAsLong();
        final Trace embed = new Trace(context.getAttribute(EmbedRequestProcessor.STATE));
        PagePlan plan = (PagePlan) context.getAttribute(WindowRequestProcessor.PLAN);
        List<SearchHit> hits = new ArrayList<>(Arrays.asList(response.getHits().getHits()));
        if (plan == null) {
            // No request side in the pipeline: the hits OpenSearch returned are the window and the page.
            plan = PagePlan.of(0, hits.size(), Math.max(1, hits.size()));
        }
        final PagePlan page = plan;
        try {
            RequestOverrides overrides = (RequestOverrides) context.getAttribute(WindowRequestProcessor.OVERRIDES);
            if (overrides == null) {
                overrides = RequestOverrides.of(request.source());
            }
            if (overrides.queryId != null) {
                embed.queryId = overrides.queryId;
            }
            embed.clientId = overrides.clientId;
            if (!page.reranks()) {
                done.accept(failOpen(response, hits, page, embed, page.skipReason, started));
                return;
            }
            String text = (String) context.getAttribute(WindowRequestProcessor.QUERY_TEXT);
            if (text == null) {
                text = overrides.queryText != null ? overrides.queryText
                    : QueryText.of(request.source() == null ? null : request.source().query());
            }
            embed.text = text;
            if (text == null || text.isBlank()) {
                done.accept(failOpen(response, hits, page, embed, "no_query_text: set ext.shoprank.query_text or use a match/multi_match query", started));
                return;
            }
            int windowSize = Math.min(page.window, hits.size());
            if (windowSize == 0) {
                done.accept(failOpen(response, hits, page, embed, "no_hits: the first stage found nothing to rerank", started));
                return;
            }
            List<SearchHit> window = hits.subList(0, windowSize);
            List<String> ids = Hits.ids(window, config);
            String method = overrides.method != null ? overrides.method : config.diversity.method;
            List<Candidate> candidates = Hits.candidates(window, ids, config, config.sendVectors(method));
            RerankRequest rerankRequest = buildRequest(text, candidates, overrides, page);
            final RequestOverrides chosen = overrides;
            pool.rerank(rerankRequest, config.deadlineMs, new SidecarPool.Callback<RerankResponse>() {
                @Override
                public void onResponse(RerankResponse reply, String target) {
                    SearchResponse out;
                    try {
                        out = reranked(response, hits, windowSize, ids, reply, page, chosen.explain, embed, started);
                    } catch (RuntimeException e) {
                        LOG.warn("shoprank: could not apply the sidecar's ranking; serving first-stage order", e);
                        out = failOpen(response, hits, page, embed, "internal_error: " + e, started);
                    }
                    done.accept(out);
                }

                @Override
                public void onFailure(String reason) {
                    done.accept(failOpen(response, hits, page, embed, reason, started));
                }
            });
        } catch (RuntimeException e) {
            LOG.warn("shoprank: rerank failed before the call; serving first-stage order", e);
            done.accept(failOpen(response, hits, page, embed, "internal_error: " + e, started));
        }
    }

    RerankRequest buildRequest(String text, List<Candidate> candidates, RequestOverrides overrides, PagePlan page) {
        RerankOptions.Builder options = RerankOptions.newBuilder()
            .setDiversity(config.diversity.toProto(overrides, page.size))
            .setExplain(overrides.explain);
        if (config.blendWeight != null) {
            options.setBlendWeight(config.blendWeight);
        }
        return RerankRequest.newBuilder()
            .setQuery(text)
            .addAllCandidates(candidates)
            .setTopK(0) // rank the whole window: every page is a slice of it
            .setOptions(options)
            .build();
    }

    private SearchResponse reranked(SearchResponse response, List<SearchHit> hits, int windowSize, List<String> ids,
                                    RerankResponse reply, PagePlan page, boolean explain, Trace trace, long started) {
        List<SearchHit> ranked = Hits.reorder(hits, windowSize, ids, reply, explain);
        Map<String, Object> ext = new LinkedHashMap<>();
        ext.put("reranked", reply.getReranked());
        ext.put("model_version", reply.getModelVersion());
        ext.put("diversity_method", reply.getDiversityMethod());
        ext.put("diversity_notes", new ArrayList<>(reply.getDiversityNotesList()));
        ext.put("fail_open_reason", reply.getReranked() ? null : "sidecar_fail_open: the sidecar answered in first-stage order");
        ext.put("window", windowSize);
        ext.put("timings", timings(started, reply.hasTimings() ? reply.getTimings() : null));
        List<SearchHit> served = page.page(ranked);
        finish(ext, trace, served, page);
        return rebuild(response, served, ext);
    }

    private SearchResponse failOpen(SearchResponse response, List<SearchHit> hits, PagePlan page, Trace trace, String reason,
                                    long started) {
        // The page OpenSearch would have returned without the plugin: the request side asked for
        // from=0 when it reranks, so cut [from, from+size); a skipped page came back as asked.
        List<SearchHit> served = page.reranks() ? page.page(hits) : hits;
        Map<String, Object> ext = new LinkedHashMap<>();
        ext.put("reranked", false);
        ext.put("model_version", null);
        ext.put("diversity_method", "none");
        ext.put("diversity_notes", List.of());
        ext.put("fail_open_reason", reason);
        ext.put("window", 0);
        ext.put("timings", timings(started, null));
        finish(ext, trace, served, page);
        return rebuild(response, served, ext);
    }

    /** ext.shoprank's query_id and embed, and the page's UBI query record (written asynchronously). */
    private void finish(Map<String, Object> ext, Trace trace, List<SearchHit> served, PagePlan page) {
        ext.put("query_id", trace.queryId);
        if (trace.embed != null) {
            ext.put("embed", trace.embed);
        }
        if (ubi == null) {
            return;
        }
        try {
            Map<String, Object> attributes = new LinkedHashMap<>();
            attributes.put("model_version", ext.get("model_version"));
            attributes.put("reranked", String.valueOf(ext.get("reranked")));
            attributes.put("fail_open", String.valueOf(ext.get("fail_open_reason") != null));
            attributes.put("fail_open_reason", ext.get("fail_open_reason"));
            attributes.put("diversity_method", ext.get("diversity_method"));
            attributes.put("from", page.from < 0 ? 0 : page.from);
            attributes.put("size", served.size());
            ubi.write(ubi.record(trace.queryId, trace.text, trace.clientId, Hits.ids(served, config), attributes));
        } catch (RuntimeException e) {
            LOG.warn("shoprank: could not build the UBI query record; the search is served without it", e);
        }
    }

    private Map<String, Object> timings(long started, StageTimings sidecar) {
        Map<String, Object> out = new LinkedHashMap<>();
        out.put("plugin_ms", (clockNanos.getAsLong() - started) / 1e6);
        if (sidecar != null) {
            Map<String, Object> stages = new LinkedHashMap<>();
            stages.put("tokenize_ms", sidecar.getTokenizeMs());
            stages.put("queue_ms", sidecar.getQueueMs());
            stages.put("inference_ms", sidecar.getInferenceMs());
            stages.put("diversify_ms", sidecar.getDiversifyMs());
            stages.put("total_ms", sidecar.getTotalMs());
            out.put("sidecar", stages);
        }
        return out;
    }

    /** The response with these hits as its page and ext.shoprank added; everything else kept. */
    static SearchResponse rebuild(SearchResponse response, List<SearchHit> page, Map<String, Object> ext) {
        SearchHits old = response.getHits();
        float maxScore = Float.NaN;
        for (SearchHit hit : page) {
            if (!Float.isNaN(hit.getScore()) && (Float.isNaN(maxScore) || hit.getScore() > maxScore)) {
                maxScore = hit.getScore();
            }
        }
        SearchHits hits = new SearchHits(page.toArray(new SearchHit[0]), old.getTotalHits(), maxScore, old.getSortFields(),
            old.getCollapseField(), old.getCollapseValues());
        SearchResponseSections internal = response.getInternalResponse();
        List<SearchExtBuilder> exts = new ArrayList<>();
        if (internal.getSearchExtBuilders() != null) {
            for (SearchExtBuilder builder : internal.getSearchExtBuilders()) {
                if (!(builder instanceof ShoprankExt)) {
                    exts.add(builder);
                }
            }
        }
        exts.add(new ShoprankExt(ext));
        SearchProfileShardResults profile = response.getProfileResults() == null || response.getProfileResults().isEmpty()
            ? null : new SearchProfileShardResults(response.getProfileResults());
        SearchResponseSections sections = new SearchResponseSections(hits, response.getAggregations(), response.getSuggest(),
            response.isTimedOut(), response.isTerminatedEarly(), profile, response.getNumReducePhases(), exts,
            internal.getProcessorResult());
        return new SearchResponse(sections, response.getScrollId(), response.getTotalShards(), response.getSuccessfulShards(),
            response.getSkippedShards(), response.getTook().millis(), response.getPhaseTook(), response.getShardFailures(),
            response.getClusters(), response.pointInTimeId());
    }

    /** Creates the processor from its pipeline config; the sidecar channels are the plugin's. */
    static final class Factory implements Processor.Factory<SearchResponseProcessor> {
        private final Channels channels;
        private final LongSupplier clockMs;
        private final ThreadContext threadContext;
        private final java.nio.file.Path configDir;
        private final org.opensearch.client.Client client;

        Factory(Channels channels, LongSupplier clockMs, ThreadContext threadContext, java.nio.file.Path configDir) {
            this(channels, clockMs, threadContext, configDir, null);
        }

        Factory(Channels channels, LongSupplier clockMs, ThreadContext threadContext, java.nio.file.Path configDir,
                org.opensearch.client.Client client) {
            this.client = client;
            this.channels = channels;
            this.clockMs = clockMs;
            this.threadContext = threadContext;
            this.configDir = configDir;
        }

        @Override
        public SearchResponseProcessor create(Map<String, Processor.Factory<SearchResponseProcessor>> factories, String tag,
                                              String description, boolean ignoreFailure, Map<String, Object> config,
                                              Processor.PipelineContext pipelineContext) {
            Map<String, Object> raw = new HashMap<>(config);
            UbiQueries ubi = UbiQueries.parse(new Config(RerankConfig.TYPE, raw), client, threadContext); // takes "ubi"
            RerankConfig parsed = RerankConfig.parse(raw, configDir);
            config.clear();
            SidecarPool pool = new SidecarPool(parsed.targets, parsed.tls, channels, parsed.breaker, clockMs);
            return new RerankResponseProcessor(tag, description, ignoreFailure, parsed, pool, ubi, System::nanoTime,
                threadContext);
        }
    }
}
