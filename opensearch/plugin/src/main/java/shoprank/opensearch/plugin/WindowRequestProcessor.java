package shoprank.opensearch.plugin;

import java.util.HashMap;
import java.util.Map;
import java.util.Set;

import org.opensearch.action.search.SearchRequest;
import org.opensearch.search.builder.SearchSourceBuilder;
import org.opensearch.search.pipeline.AbstractProcessor;
import org.opensearch.search.pipeline.PipelineProcessingContext;
import org.opensearch.search.pipeline.Processor;
import org.opensearch.search.pipeline.SearchRequestProcessor;
import org.opensearch.search.sort.ScoreSortBuilder;
import org.opensearch.search.sort.SortBuilder;

/**
 * The request side of {@code shoprank_rerank} (config: {@code window}, default 100): asks
 * OpenSearch for the whole rerank window when the page starts inside it (see {@link PagePlan}) and
 * hands the plan, the ext.shoprank overrides and the query text to the response side.
 */
final class WindowRequestProcessor extends AbstractProcessor implements SearchRequestProcessor {
    static final String TYPE = RerankConfig.TYPE;
    static final int DEFAULT_WINDOW = 100;
    static final int MAX_WINDOW = 1000;
    static final String PLAN = "shoprank.plan";
    static final String OVERRIDES = "shoprank.overrides";
    static final String QUERY_TEXT = "shoprank.query_text";

    final int window;

    WindowRequestProcessor(String tag, String description, boolean ignoreFailure, int window) {
        super(tag, description, ignoreFailure);
        this.window = window;
    }

    @Override
    public String getType() {
        return TYPE;
    }

    @Override
    public SearchRequest processRequest(SearchRequest request) {
        return processRequest(request, new PipelineProcessingContext());
    }

    @Override
    public SearchRequest processRequest(SearchRequest request, PipelineProcessingContext context) {
        SearchSourceBuilder source = request.source();
        RequestOverrides overrides = RequestOverrides.of(source); // a bad ext.shoprank is the caller's 400
        context.setAttribute(OVERRIDES, overrides);
        int from = source == null ? -1 : source.from();
        int size = source == null ? -1 : source.size();
        PagePlan plan;
        String skip = skipReason(request, overrides);
        if (skip != null) {
            plan = PagePlan.skip(from, size, window, skip);
        } else {
            plan = PagePlan.of(from, size, window);
        }
        context.setAttribute(PLAN, plan);
        String text = overrides.queryText != null ? overrides.queryText : QueryText.of(source == null ? null : source.query());
        if (text != null) {
            context.setAttribute(QUERY_TEXT, text);
        }
        if (plan.reranks()) {
            if (source == null) {
                source = new SearchSourceBuilder();
                request.source(source);
            }
            source.from(plan.fetchFrom());
            source.size(plan.fetchSize());
        }
        return request;
    }

    /** Why this request is not reranked at all, or null. */
    static String skipReason(SearchRequest request, RequestOverrides overrides) {
        if (!overrides.rerank) {
            return "rerank_off: ext.shoprank.rerank is false";
        }
        if (request.scroll() != null) {
            return "unsupported: scroll searches are not reranked";
        }
        SearchSourceBuilder source = request.source();
        if (source != null && source.searchAfter() != null) {
            return "unsupported: search_after pages are not reranked";
        }
        if (source != null && source.sorts() != null) {
            for (SortBuilder<?> sort : source.sorts()) {
                if (!(sort instanceof ScoreSortBuilder)) {
                    return "unsupported: a search sorted by " + sort.getWriteableName() + " is not reranked";
                }
            }
        }
        return null;
    }

    /** Creates the processor from its pipeline config. */
    static final class Factory implements Processor.Factory<SearchRequestProcessor> {
        @Override
        public SearchRequestProcessor create(Map<String, Processor.Factory<SearchRequestProcessor>> factories, String tag,
                                             String description, boolean ignoreFailure, Map<String, Object> config,
                                             Processor.PipelineContext pipelineContext) {
            Config reader = new Config(TYPE + " (request)", new HashMap<>(config));
            int window = reader.integer("window", DEFAULT_WINDOW, 1, MAX_WINDOW);
            reader.rejectUnknown(Set.of("window"));
            config.clear();
            return new WindowRequestProcessor(tag, description, ignoreFailure, window);
        }
    }
}
