package shoprank.opensearch.plugin;

import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.concurrent.ConcurrentHashMap;
import java.util.function.LongSupplier;

import org.opensearch.action.admin.indices.mapping.get.GetMappingsRequest;
import org.opensearch.action.search.SearchRequest;
import org.opensearch.action.support.ContextPreservingActionListener;
import org.opensearch.client.Client;
import org.opensearch.cluster.metadata.MappingMetadata;
import org.opensearch.common.util.concurrent.ThreadContext;
import org.opensearch.core.action.ActionListener;

/**
 * The bi-encoder version the searched indices recorded at index time (mapping
 * {@code _meta.shoprank.bi_encoder_version}), read with a get-mappings call and cached for
 * {@link #TTL_MS} per index expression: a reindex that swaps the alias to a new model is seen within
 * that time. Indices that disagree are an error (their vectors come from different models).
 */
final class IndexModelVersions implements EmbedRequestProcessor.IndexVersions {
    static final long TTL_MS = 10_000;

    private static final class Cached {
        final String version;
        final long expiresMs;

        Cached(String version, long expiresMs) {
            this.version = version;
            this.expiresMs = expiresMs;
        }
    }

    private final Client client;
    private final ThreadContext threadContext;
    private final LongSupplier clockMs;
    private final Map<String, Cached> cache = new ConcurrentHashMap<>();

    IndexModelVersions(Client client, ThreadContext threadContext, LongSupplier clockMs) {
        this.client = client;
        this.threadContext = threadContext;
        this.clockMs = clockMs;
    }

    @Override
    public void versionOf(SearchRequest request, ActionListener<String> listener) {
        String[] indices = request.indices().length == 0 ? new String[] {"_all"} : request.indices();
        String key = String.join(",", indices);
        Cached cached = cache.get(key);
        long now = clockMs.getAsLong();
        if (cached != null && cached.expiresMs > now) {
            listener.onResponse(cached.version);
            return;
        }
        GetMappingsRequest mappings = new GetMappingsRequest();
        mappings.indices(indices);
        mappings.indicesOptions(request.indicesOptions());
        ActionListener<String> restoring = ContextPreservingActionListener.wrapPreservingContext(listener, threadContext);
        // The plugin's own read of index metadata, not the searching user's: run it in the node's context.
        try (ThreadContext.StoredContext ignored = threadContext.stashContext()) {
            client.admin().indices().getMappings(mappings, ActionListener.wrap(response -> {
                String version = agreed(response.mappings());
                cache.put(key, new Cached(version, clockMs.getAsLong() + TTL_MS));
                restoring.onResponse(version);
            }, restoring::onFailure));
        }
    }

    /** The one version the indices recorded (null: none recorded); indices built with different models are an error. */
    static String agreed(Map<String, MappingMetadata> mappings) {
        Map<String, String> byIndex = new TreeMap<>();
        for (Map.Entry<String, MappingMetadata> entry : mappings.entrySet()) {
            String version = entry.getValue() == null ? null : recorded(entry.getValue().sourceAsMap());
            if (version != null) {
                byIndex.put(entry.getKey(), version);
            }
        }
        Set<String> distinct = new TreeSet<>(byIndex.values());
        if (distinct.size() > 1) {
            throw new IllegalArgumentException("[" + EmbedConfig.TYPE + "] the searched indices were built with different "
                + "bi-encoders " + byIndex + ": search one of them, or reindex them with one model");
        }
        return distinct.isEmpty() ? null : distinct.iterator().next();
    }

    /** The version in one mapping's source ({@code _meta.shoprank.bi_encoder_version}), or null. */
    static String recorded(Map<String, Object> mapping) {
        Object meta = mapping.get("_meta");
        Object shoprank = meta instanceof Map ? ((Map<?, ?>) meta).get("shoprank") : null;
        Object version = shoprank instanceof Map ? ((Map<?, ?>) shoprank).get(EmbedConfig.META_VERSION_KEY) : null;
        return version instanceof String && !((String) version).isBlank() ? (String) version : null;
    }
}
