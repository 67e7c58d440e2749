package shoprank.opensearch.plugin;

import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * The {@code shoprank_embed} request processor's settings, read from its pipeline config:
 *
 * <pre>
 * targets         sidecar addresses host:port (required; round robin with a circuit breaker each,
 *                 on the plugin's shared channels, as shoprank_rerank)
 * deadline_ms     the Embed call's deadline (default 200)
 * field           the knn_vector field whose knn (or neural) clauses are filled (default "vector")
 * model_version   the bi-encoder version the index was built with; default: read from the index
 *                 mapping's _meta.shoprank.bi_encoder_version (what `shoprank index` records)
 * drop_knn_on_failure  when the sidecar fails, a knn clause that is not the whole query becomes
 *                 match_none, so the search answers from its other clauses (default true);
 *                 false: the search fails (or, with ignore_failure, runs unchanged)
 * breaker         {failures, backoff_ms, max_backoff_ms} (as shoprank_rerank)
 * tls             {ca_file, cert_file, key_file, server_name} (as shoprank_rerank)
 * </pre>
 */
final class EmbedConfig {
    static final String TYPE = "shoprank_embed";
    static final Set<String> KEYS = Set.of("targets", "deadline_ms", "field", "model_version", "drop_knn_on_failure",
        "breaker", "tls");
    static final int DEFAULT_DEADLINE_MS = 200;
    /** The mapping _meta key `shoprank index` records the bi-encoder under (engines/opensearch_versions.py). */
    static final String META_VERSION_KEY = "bi_encoder_version";

    final List<String> targets;
    final int deadlineMs;
    final String field;
    final String modelVersion; // null: read from the index _meta
    final boolean dropKnnOnFailure;
    final CircuitBreaker.Settings breaker;
    final Tls tls;

    private EmbedConfig(List<String> targets, int deadlineMs, String field, String modelVersion, boolean dropKnnOnFailure,
                        CircuitBreaker.Settings breaker, Tls tls) {
        this.targets = targets;
        this.deadlineMs = deadlineMs;
        this.field = field;
        this.modelVersion = modelVersion;
        this.dropKnnOnFailure = dropKnnOnFailure;
        this.breaker = breaker;
        this.tls = tls;
    }

    /** The config; relative TLS file paths are under {@code configDir} (OpenSearch's config directory). */
    static EmbedConfig parse(Map<String, Object> raw, java.nio.file.Path configDir) {
        Config config = new Config(TYPE, raw);
        List<String> targets = RerankConfig.targets(config);
        int deadline = config.integer("deadline_ms", DEFAULT_DEADLINE_MS, 1, 60_000);
        String field = config.string("field", "vector");
        if (field.isBlank()) {
            throw config.error("field", "name the knn_vector field, e.g. \"vector\"");
        }
        String version = config.string("model_version", null);
        if (version != null && version.isBlank()) {
            throw config.error("model_version", "must not be blank (leave it out to read the index's _meta)");
        }
        boolean drop = config.bool("drop_knn_on_failure", true);
        CircuitBreaker.Settings breaker = RerankConfig.breaker(config);
        Tls tls = Tls.parse(config.object("tls"), configDir);
        config.rejectUnknown(KEYS);
        return new EmbedConfig(targets, deadline, field, version, drop, breaker, tls);
    }
}
