package shoprank.opensearch.plugin;

import java.io.IOException;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.function.LongSupplier;

import org.opensearch.OpenSearchStatusException;
import org.opensearch.action.search.SearchRequest;
import org.opensearch.action.support.ContextPreservingActionListener;
import org.opensearch.common.util.concurrent.ThreadContext;
import org.opensearch.common.xcontent.json.JsonXContent;
import org.opensearch.core.action.ActionListener;
import org.opensearch.core.common.bytes.BytesReference;
import org.opensearch.core.rest.RestStatus;
import org.opensearch.core.xcontent.DeprecationHandler;
import org.opensearch.core.xcontent.NamedXContentRegistry;
import org.opensearch.core.xcontent.XContentParser;
import org.opensearch.index.query.AbstractQueryBuilder;
import org.opensearch.index.query.QueryBuilder;
import org.opensearch.search.builder.SearchSourceBuilder;
import org.opensearch.search.pipeline.AbstractProcessor;
import org.opensearch.search.pipeline.PipelineProcessingContext;
import org.opensearch.search.pipeline.Processor;
import org.opensearch.search.pipeline.SearchRequestProcessor;

import shoprank.v1.Rerank.EmbedRequest;
import shoprank.v1.Rerank.EmbedResponse;

/**
 * {@code shoprank_embed}: fills the vector of each knn clause on the configured field (and turns
 * each neural clause on it into one) from the query's text, with one Embed call to the sidecar for
 * every text of the request, checked against the bi-encoder the index was built with. So a shop box
 * sends text only. See {@link KnnSlots} for the clauses and {@link EmbedConfig} for the settings.
 *
 * <p>A vector cannot be made up when the sidecar fails, so this processor does not fail open the way
 * shoprank_rerank does. When the knn clause is not the whole query (the usual hybrid of a text and a
 * knn clause) it becomes {@code match_none} and the search answers from its text clauses, flagged in
 * {@code ext.shoprank.embed}; when it is the whole query the search fails with 503 (with OpenSearch's
 * {@code ignore_failure: true} on the processor, the request then runs unchanged). A bi-encoder
 * mismatch between sidecar and index is never hidden: 409, saying to reindex.
 */
final class EmbedRequestProcessor extends AbstractProcessor implements SearchRequestProcessor {
    /** Context attribute holding what this processor did; shoprank_rerank returns it as ext.shoprank.embed. */
    static final String STATE = "shoprank.embed";

    /** Parses a query's JSON form back into a query builder (the node's registry knows knn and hybrid). */
    interface QueryParser {
        QueryBuilder parse(Map<String, Object> query) throws IOException;
    }

    /** The bi-encoder version the searched indices recorded (null: none recorded). */
    interface IndexVersions {
        void versionOf(SearchRequest request, ActionListener<String> listener);
    }

    final EmbedConfig config;
    final SidecarPool pool;
    private final QueryParser parser;
    private final IndexVersions versions;
    private final LongSupplier clockNanos;
    private final ThreadContext threadContext;

    EmbedRequestProcessor(String tag, String description, boolean ignoreFailure, EmbedConfig config, SidecarPool pool,
                          QueryParser parser, IndexVersions versions, LongSupplier clockNanos, ThreadContext threadContext) {
        super(tag, description, ignoreFailure);
        this.config = config;
        this.pool = pool;
        this.parser = parser;
        this.versions = versions;
        this.clockNanos = clockNanos;
        this.threadContext = threadContext;
    }

    @Override
    public String getType() {
        return EmbedConfig.TYPE;
    }

    @Override
    public SearchRequest processRequest(SearchRequest request) throws Exception {
        return processRequest(request, new PipelineProcessingContext());
    }

    @Override
    public SearchRequest processRequest(SearchRequest request, PipelineProcessingContext context) throws Exception {
        CompletableFuture<SearchRequest> done = new CompletableFuture<>();
        embed(request, context, ActionListener.wrap(done::complete, done::completeExceptionally));
        try {
            return done.get(config.deadlineMs + 5_000L, TimeUnit.MILLISECONDS);
        } catch (ExecutionException e) {
            throw e.getCause() instanceof Exception ? (Exception) e.getCause() : e;
        }
    }

    @Override
    public void processRequestAsync(SearchRequest request, PipelineProcessingContext context,
                                    ActionListener<SearchRequest> listener) {
        // The search continues on a gRPC callback thread: carry the request's thread context there.
        ActionListener<SearchRequest> next = threadContext == null ? listener
            : ContextPreservingActionListener.wrapPreservingContext(listener, threadContext);
        embed(request, context, next);
    }

    /** Rewrites the request's knn clauses; {@code listener} hears once. */
    void embed(SearchRequest request, PipelineProcessingContext context, ActionListener<SearchRequest> listener) {
        long started = clockNanos.getAsLong();
        try {
            SearchSourceBuilder source = request.source();
            if (source == null || source.query() == null) {
                listener.onResponse(request);
                return;
            }
            Map<String, Object> query = QueryText.toMap(source.query());
            List<KnnSlots.Slot> slots = KnnSlots.find(query, config.field);
            if (slots.isEmpty()) {
                listener.onResponse(request);
                return;
            }
            RequestOverrides overrides = RequestOverrides.of(source);
            String text = overrides.queryText != null ? overrides.queryText : QueryText.find(query);
            List<String> texts = new ArrayList<>();
            List<Integer> slotText = new ArrayList<>();
            for (KnnSlots.Slot slot : slots) {
                String wanted = slot.ownText != null && !slot.ownText.isBlank() ? slot.ownText : text;
                if (wanted == null || wanted.isBlank()) {
                    throw new IllegalArgumentException("[" + EmbedConfig.TYPE + "] the query has a " + slot.kind
                        + " clause on '" + config.field + "' to fill but no text to embed: set ext.shoprank.query_text "
                        + "or add a match/multi_match clause (or query_text to the neural clause)");
                }
                if (!texts.contains(wanted)) {
                    texts.add(wanted);
                }
                slotText.add(texts.indexOf(wanted));
            }
            if (text != null && context.getAttribute(WindowRequestProcessor.QUERY_TEXT) == null) {
                context.setAttribute(WindowRequestProcessor.QUERY_TEXT, text); // shoprank_rerank's query text
            } else if (text == null && context.getAttribute(WindowRequestProcessor.QUERY_TEXT) == null) {
                context.setAttribute(WindowRequestProcessor.QUERY_TEXT, texts.get(0)); // a neural-only query
            }
            if (config.modelVersion != null) {
                call(request, context, query, slots, texts, slotText, config.modelVersion, started, listener);
                return;
            }
            versions.versionOf(request, ActionListener.wrap(
                version -> call(request, context, query, slots, texts, slotText, version, started, listener),
                listener::onFailure));
        } catch (Exception e) {
            listener.onFailure(e);
        }
    }

    private void call(SearchRequest request, PipelineProcessingContext context, Map<String, Object> query,
                      List<KnnSlots.Slot> slots, List<String> texts, List<Integer> slotText, String expected,
                      long started, ActionListener<SearchRequest> listener) {
        EmbedRequest.Builder embed = EmbedRequest.newBuilder().addAllTexts(texts);
        if (expected != null) {
            embed.setExpectedModelVersion(expected);
        }
        pool.embed(embed.build(), config.deadlineMs, new SidecarPool.Callback<EmbedResponse>() {
            @Override
            public void onResponse(EmbedResponse reply, String target) {
                try {
                    if (reply.getVectorsCount() != texts.size()) {
                        onFailure("error: sidecar " + target + " returned " + reply.getVectorsCount() + " vectors for "
                            + texts.size() + " texts");
                        return;
                    }
                    for (int i = 0; i < slots.size(); i++) {
                        KnnSlots.fill(slots.get(i), config.field, reply.getVectors(slotText.get(i)).getValuesList());
                    }
                    request.source().query(parser.parse(query));
                    Map<String, Object> state = state(true, started, null);
                    state.put("model_version", reply.getModelVersion());
                    state.put("version_checked", expected != null);
                    state.put("texts", texts.size());
                    state.put("sidecar_ms", reply.hasTimings() ? reply.getTimings().getTotalMs() : null);
                    context.setAttribute(STATE, state);
                    listener.onResponse(request);
                } catch (Exception e) {
                    listener.onFailure(e);
                }
            }

            @Override
            public void onFailure(String reason) {
                try {
                    failed(request, context, query, slots, reason, expected, started, listener);
                } catch (Exception e) {
                    listener.onFailure(e);
                }
            }
        });
    }

    private void failed(SearchRequest request, PipelineProcessingContext context, Map<String, Object> query,
                        List<KnnSlots.Slot> slots, String reason, String expected, long started,
                        ActionListener<SearchRequest> listener) throws IOException {
        if (reason.startsWith(SidecarPool.MISMATCH)) {
            listener.onFailure(new OpenSearchStatusException("[" + EmbedConfig.TYPE + "] " + reason + ". The index was "
                + "built with bi-encoder " + expected + ": reindex with the sidecar's model (`shoprank index`) or serve "
                + "the index's model on the sidecar", RestStatus.CONFLICT));
            return;
        }
        boolean degradable = config.dropKnnOnFailure && slots.stream().noneMatch(slot -> slot.root);
        if (!degradable) {
            listener.onFailure(new OpenSearchStatusException("[" + EmbedConfig.TYPE + "] could not embed the query text ("
                + reason + ") and the knn clause is the whole query, so there is nothing to answer from; "
                + "add a text clause (hybrid), or set ignore_failure: true on the processor to run the request unchanged",
                RestStatus.SERVICE_UNAVAILABLE));
            return;
        }
        for (KnnSlots.Slot slot : slots) {
            KnnSlots.drop(slot);
        }
        request.source().query(parser.parse(query));
        Map<String, Object> state = state(false, started, reason);
        state.put("knn_dropped", slots.size());
        context.setAttribute(STATE, state);
        listener.onResponse(request);
    }

    private Map<String, Object> state(boolean embedded, long started, String reason) {
        Map<String, Object> state = new LinkedHashMap<>();
        state.put("embedded", embedded);
        state.put("fail_open_reason", reason);
        state.put("plugin_ms", (clockNanos.getAsLong() - started) / 1e6);
        return state;
    }

    /** Parses queries with the node's registry, which holds every installed plugin's query types. */
    static QueryParser registryParser(NamedXContentRegistry registry) {
        return query -> {
            BytesReference json = BytesReference.bytes(JsonXContent.contentBuilder().map(query));
            try (XContentParser parser = JsonXContent.jsonXContent.createParser(registry,
                    DeprecationHandler.IGNORE_DEPRECATIONS, json.streamInput())) {
                return AbstractQueryBuilder.parseInnerQueryBuilder(parser);
            }
        };
    }

    /** Creates the processor from its pipeline config; the sidecar channels are the plugin's. */
    static final class Factory implements Processor.Factory<SearchRequestProcessor> {
        private final Channels channels;
        private final LongSupplier clockMs;
        private final ThreadContext threadContext;
        private final java.nio.file.Path configDir;
        private final QueryParser parser;
        private final IndexVersions versions;

        Factory(Channels channels, LongSupplier clockMs, ThreadContext threadContext, java.nio.file.Path configDir,
                QueryParser parser, IndexVersions versions) {
            this.channels = channels;
            this.clockMs = clockMs;
            this.threadContext = threadContext;
            this.configDir = configDir;
            this.parser = parser;
            this.versions = versions;
        }

        @Override
        public SearchRequestProcessor create(Map<String, Processor.Factory<SearchRequestProcessor>> factories, String tag,
                                             String description, boolean ignoreFailure, Map<String, Object> config,
                                             Processor.PipelineContext pipelineContext) {
            EmbedConfig parsed = EmbedConfig.parse(new HashMap<>(config), configDir);
            config.clear();
            SidecarPool pool = new SidecarPool(parsed.targets, parsed.tls, channels, parsed.breaker, clockMs);
            return new EmbedRequestProcessor(tag, description, ignoreFailure, parsed, pool, parser, versions,
                System::nanoTime, threadContext);
        }
    }
}
