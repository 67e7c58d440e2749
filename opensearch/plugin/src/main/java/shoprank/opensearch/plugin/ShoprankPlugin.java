package shoprank.opensearch.plugin;

import java.util.List;
import java.util.Map;

import org.opensearch.plugins.Plugin;
import org.opensearch.plugins.SearchPipelinePlugin;
import org.opensearch.plugins.SearchPlugin;
import org.opensearch.search.pipeline.Processor;
import org.opensearch.search.pipeline.SearchRequestProcessor;
import org.opensearch.search.pipeline.SearchResponseProcessor;

/**
 * shoprank inside OpenSearch: the {@code shoprank_rerank} search-pipeline processor (request side:
 * the rerank window; response side: one Rerank call to the sidecar, fail-open), the
 * {@code shoprank_embed} request processor (knn vectors from the query text, one Embed call) and the
 * {@code ext.shoprank} object of requests and responses.
 */
public class ShoprankPlugin extends Plugin implements SearchPlugin, SearchPipelinePlugin {
    private final Channels channels;

    public ShoprankPlugin() {
        this(Channels.netty());
    }

    ShoprankPlugin(Channels channels) {
        this.channels = channels;
    }

    @Override
    public List<SearchExtSpec<?>> getSearchExts() {
        return List.of(new SearchExtSpec<>(ShoprankExt.NAME, ShoprankExt::new, ShoprankExt::fromXContent));
    }

    @Override
    public Map<String, Processor.Factory<SearchRequestProcessor>> getRequestProcessors(Parameters parameters) {
        return Map.of(
            WindowRequestProcessor.TYPE, new WindowRequestProcessor.Factory(),
            EmbedConfig.TYPE, new EmbedRequestProcessor.Factory(channels, System::currentTimeMillis, parameters.threadContext,
                parameters.env.configFile(), EmbedRequestProcessor.registryParser(parameters.namedXContentRegistry),
                new IndexModelVersions(parameters.client, parameters.threadContext, System::currentTimeMillis)));
    }

    @Override
    public Map<String, Processor.Factory<SearchResponseProcessor>> getResponseProcessors(Parameters parameters) {
        return Map.of(RerankConfig.TYPE, new RerankResponseProcessor.Factory(
            channels, System::currentTimeMillis, parameters.threadContext, parameters.env.configFile(), parameters.client));
    }

    @Override
    public void close() {
        channels.close();
    }
}
