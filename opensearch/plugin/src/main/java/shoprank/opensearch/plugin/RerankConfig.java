package shoprank.opensearch.plugin;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * The {@code shoprank_rerank} response processor's settings, read from its pipeline config:
 *
 * <pre>
 * targets        sidecar addresses host:port (required; several are used round robin, skipping
 *                the ones whose circuit breaker is open)
 * deadline_ms    the Rerank call's deadline (default 300)
 * fields         proto Product field -> _source path (dots for objects); default: same names
 * defaults       proto Product field -> text used when the hit's _source lacks the field
 * id_field       _source path of the candidate id (default: the hit's _id)
 * send_vectors   send each hit's stored vector (default: only when the method is mmr or dpp)
 * vector_field   _source path of the stored vector (default "vector")
 * blend_weight   weight of the first-stage score in [0, 1] (default: the sidecar's)
 * diversity      {method, strength, max_per_brand, max_per_category, window, facets, attribute_weight}
 * breaker        {failures (default 3), backoff_ms (default 5000), max_backoff_ms (default 60000)}
 * tls            {ca_file, cert_file, key_file, server_name} (see {@link Tls}); absent: plaintext
 * ubi            {index (default ubi_queries), application}: write a UBI query record of each
 *                served page (see {@link UbiQueries}); absent: none
 * </pre>
 */
final class RerankConfig {
    static final String TYPE = "shoprank_rerank";
    static final Set<String> KEYS = Set.of("targets", "deadline_ms", "fields", "defaults", "id_field", "send_vectors",
        "vector_field", "blend_weight", "diversity", "breaker", "tls", "ubi");
    /** The proto Product's fields, in proto order. */
    static final List<String> PRODUCT_FIELDS = List.of("title", "brand", "category", "color", "bullet_points", "description");
    static final int DEFAULT_DEADLINE_MS = 300;

    final List<String> targets;
    final int deadlineMs;
    final Map<String, String> fields;
    final Map<String, String> defaults;
    final String idField;
    final Boolean sendVectors; // null: when the diversity method needs embeddings
    final String vectorField;
    final Float blendWeight;
    final Diversity diversity;
    final CircuitBreaker.Settings breaker;
    final Tls tls;

    private RerankConfig(List<String> targets, int deadlineMs, Map<String, String> fields, Map<String, String> defaults,
                         String idField, Boolean sendVectors, String vectorField, Float blendWeight,
                         Diversity diversity, CircuitBreaker.Settings breaker, Tls tls) {
        this.targets = targets;
        this.deadlineMs = deadlineMs;
        this.fields = fields;
        this.defaults = defaults;
        this.idField = idField;
        this.sendVectors = sendVectors;
        this.vectorField = vectorField;
        this.blendWeight = blendWeight;
        this.diversity = diversity;
        this.breaker = breaker;
        this.tls = tls;
    }

    static RerankConfig parse(Map<String, Object> raw) {
        return parse(raw, null);
    }

    /** The config; relative TLS file paths are under {@code configDir} (OpenSearch's config directory). */
    static RerankConfig parse(Map<String, Object> raw, java.nio.file.Path configDir) {
        Config config = new Config(TYPE, raw);
        List<String> targets = targets(config);
        int deadline = config.integer("deadline_ms", DEFAULT_DEADLINE_MS, 1, 60_000);
        Set<String> productFields = Set.copyOf(PRODUCT_FIELDS);
        Map<String, String> fields = new LinkedHashMap<>();
        for (String name : PRODUCT_FIELDS) {
            fields.put(name, name);
        }
        fields.putAll(config.object("fields").remainingStrings(productFields));
        Map<String, String> defaults = config.object("defaults").remainingStrings(productFields);
        String idField = config.string("id_field", null);
        Boolean sendVectors = config.bool("send_vectors", null);
        String vectorField = config.string("vector_field", "vector");
        Float blend = config.unitInterval("blend_weight");
        Diversity diversity = Diversity.parse(config.object("diversity"));
        CircuitBreaker.Settings breaker = breaker(config);
        Tls tls = Tls.parse(config.object("tls"), configDir);
        config.rejectUnknown(KEYS);
        return new RerankConfig(targets, deadline, fields, defaults, idField, sendVectors, vectorField,
            blend, diversity, breaker, tls);
    }

    /** The {@code targets} of a processor config: one or more sidecar addresses host:port. */
    static List<String> targets(Config config) {
        List<String> targets = config.strings("targets");
        if (targets.isEmpty()) {
            throw config.error("targets", "name at least one sidecar address, e.g. [\"127.0.0.1:50051\"]");
        }
        for (String target : targets) {
            if (!target.matches("[^\\s/]+:[0-9]{1,5}")) {
                throw config.error("targets", "'" + target + "' is not host:port");
            }
        }
        return List.copyOf(targets);
    }

    /** The {@code breaker} object of a processor config (every sidecar gets its own breaker with these settings). */
    static CircuitBreaker.Settings breaker(Config config) {
        Config breakerConfig = config.object("breaker");
        CircuitBreaker.Settings breaker = new CircuitBreaker.Settings(
            breakerConfig.integer("failures", 3, 1, 1000),
            breakerConfig.integer("backoff_ms", 5000, 1, 3_600_000),
            breakerConfig.integer("max_backoff_ms", 60_000, 1, 3_600_000));
        breakerConfig.rejectUnknown(Set.of("failures", "backoff_ms", "max_backoff_ms"));
        return breaker;
    }

    /** Whether to send stored vectors for a request whose diversity method is {@code method}. */
    boolean sendVectors(String method) {
        return sendVectors != null ? sendVectors : Diversity.usesEmbeddings(method);
    }
}
