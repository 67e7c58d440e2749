package shoprank.opensearch.plugin;

import java.time.Instant;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.Semaphore;
import java.util.concurrent.atomic.AtomicLong;

import org.apache.logging.log4j.LogManager;
import org.apache.logging.log4j.Logger;
import org.opensearch.action.index.IndexRequest;
import org.opensearch.client.Client;
import org.opensearch.common.util.concurrent.ThreadContext;
import org.opensearch.core.action.ActionListener;

/**
 * UBI 1.3.0 query records of the searches shoprank_rerank served ({@code ubi} in its config:
 * {@code index}, default {@code ubi_queries}, and {@code application}), written to the node's own
 * index asynchronously, off the request path: the search answers while the index request runs on
 * OpenSearch's write pool. At most {@link #MAX_IN_FLIGHT} writes are outstanding; beyond that a
 * record is dropped and counted, never queued without bound. The document id is the query id, so a
 * client that reuses one overwrites its record. The index's mapping (ids as keywords, for Search
 * Relevance Workbench's term queries) is what `shoprank opensearch setup` creates; the same record
 * shape as the front door's (frontdoor/ubi_events.py).
 */
final class UbiQueries {
    private static final Logger LOG = LogManager.getLogger(UbiQueries.class);
    static final Set<String> KEYS = Set.of("index", "application");
    static final String DEFAULT_INDEX = "ubi_queries";
    static final String DEFAULT_APPLICATION = "opensearch";
    static final String ENGINE = "opensearch-plugin";
    static final int MAX_IN_FLIGHT = 256;

    final String index;
    final String application;
    private final Client client;
    private final ThreadContext threadContext;
    private final Semaphore inFlight = new Semaphore(MAX_IN_FLIGHT);
    final AtomicLong written = new AtomicLong();
    final AtomicLong dropped = new AtomicLong();
    final AtomicLong failed = new AtomicLong();

    UbiQueries(String index, String application, Client client, ThreadContext threadContext) {
        this.index = index;
        this.application = application;
        this.client = client;
        this.threadContext = threadContext;
    }

    /** The {@code ubi} object of a processor config, or null when absent (no records written). */
    static UbiQueries parse(Config root, Client client, ThreadContext threadContext) {
        if (!root.has("ubi")) {
            root.object("ubi"); // consume an explicit null
            return null;
        }
        Config config = root.object("ubi");
        String index = config.string("index", DEFAULT_INDEX);
        if (index.isBlank() || !index.equals(index.toLowerCase(java.util.Locale.ROOT))) {
            throw config.error("index", "must be a lower-case index name, e.g. " + DEFAULT_INDEX);
        }
        String application = config.string("application", DEFAULT_APPLICATION);
        if (application.isBlank() || application.length() > RequestOverrides.UBI_ID_CHARS) {
            throw config.error("application", "must be 1 to " + RequestOverrides.UBI_ID_CHARS + " characters");
        }
        config.rejectUnknown(KEYS);
        if (client == null) {
            throw config.error("index", "UBI records need the node's client (not available here)");
        }
        return new UbiQueries(index, application, client, threadContext);
    }

    /** The ubi_queries document (UBI 1.3.0: attributes as strings). */
    Map<String, Object> record(String queryId, String userQuery, String clientId, List<String> hitIds,
                               Map<String, Object> attributes) {
        Map<String, Object> doc = new LinkedHashMap<>();
        doc.put("timestamp", Instant.now().toString());
        doc.put("query_id", queryId);
        doc.put("user_query", userQuery == null ? "" : userQuery);
        if (clientId != null) {
            doc.put("client_id", clientId);
        }
        doc.put("application", application);
        doc.put("query_response_hit_ids", hitIds);
        Map<String, String> strings = new LinkedHashMap<>();
        strings.put("engine", ENGINE);
        for (Map.Entry<String, Object> entry : attributes.entrySet()) {
            if (entry.getValue() != null && !String.valueOf(entry.getValue()).isEmpty()) {
                strings.put(entry.getKey(), String.valueOf(entry.getValue()));
            }
        }
        doc.put("query_attributes", strings);
        return doc;
    }

    /** Index one record without waiting; dropped (and counted) when MAX_IN_FLIGHT writes are outstanding. */
    void write(Map<String, Object> doc) {
        if (!inFlight.tryAcquire()) {
            dropped.incrementAndGet();
            return;
        }
        IndexRequest request = new IndexRequest(index).id((String) doc.get("query_id")).source(doc);
        // The plugin's own write, not the searching user's: in the node's context.
        try (ThreadContext.StoredContext ignored = threadContext == null ? null : threadContext.stashContext()) {
            client.index(request, ActionListener.wrap(response -> {
                inFlight.release();
                written.incrementAndGet();
            }, error -> {
                inFlight.release();
                if (failed.incrementAndGet() % 1000 == 1) { // the first failure, then one in a thousand
                    LOG.warn("shoprank: could not write a UBI query record to [" + index + "] (" + failed.get()
                        + " failed so far)", error);
                }
            }));
        } catch (RuntimeException e) {
            inFlight.release();
            failed.incrementAndGet();
            LOG.warn("shoprank: could not send a UBI query record to [" + index + "]", e);
        }
    }
}
