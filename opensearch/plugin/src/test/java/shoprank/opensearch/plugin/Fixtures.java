package shoprank.opensearch.plugin;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

import org.apache.lucene.search.TotalHits;
import org.opensearch.action.search.SearchRequest;
import org.opensearch.action.search.SearchResponse;
import org.opensearch.action.search.SearchResponseSections;
import org.opensearch.action.search.ShardSearchFailure;
import org.opensearch.common.xcontent.json.JsonXContent;
import org.opensearch.core.common.bytes.BytesReference;
import org.opensearch.core.index.shard.ShardId;
import org.opensearch.core.xcontent.XContentBuilder;
import org.opensearch.index.query.QueryBuilders;
import org.opensearch.search.SearchHit;
import org.opensearch.search.SearchHits;
import org.opensearch.search.SearchShardTarget;
import org.opensearch.search.builder.SearchSourceBuilder;

/** Test data: a catalogue of hits in first-stage order and the requests and responses around them. */
final class Fixtures {
    private Fixtures() {}

    /** Hit i of index "products": id p{i}, score 100 - i, brand b{i % 3}. */
    static SearchHit hit(int i, String index) {
        SearchHit hit = new SearchHit(i, "p" + i, Map.of(), Map.of());
        hit.score(100f - i);
        hit.shard(new SearchShardTarget("node", new ShardId(index, "uuid", 0), null, null));
        hit.sourceRef(source(Map.of(
            "title", "product " + i,
            "brand", "b" + (i % 3),
            "category", List.of("Shoes", "Running"),
            "bullet_points", List.of("light", "fast"),
            "vector", List.of(0.5 * i, 1.0))));
        return hit;
    }

    static BytesReference source(Map<String, Object> map) {
        try {
            XContentBuilder builder = JsonXContent.contentBuilder().map(map);
            return BytesReference.bytes(builder);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** What OpenSearch answers for from/size over a result list of {@code total} hits. */
    static SearchResponse response(int from, int size, int total) {
        List<SearchHit> hits = new ArrayList<>();
        for (int i = from; i < Math.min(total, from + size); i++) {
            hits.add(hit(i, "products"));
        }
        return response(hits, total);
    }

    static SearchResponse response(List<SearchHit> hits, int total) {
        SearchHits searchHits = new SearchHits(hits.toArray(new SearchHit[0]),
            new TotalHits(total, TotalHits.Relation.EQUAL_TO), hits.isEmpty() ? Float.NaN : hits.get(0).getScore());
        SearchResponseSections sections = new SearchResponseSections(searchHits, null, null, false, null, null, 1);
        return new SearchResponse(sections, null, 1, 1, 0, 3, ShardSearchFailure.EMPTY_ARRAY, SearchResponse.Clusters.EMPTY);
    }

    static SearchRequest request(String text, int from, int size, Map<String, Object> ext) {
        SearchSourceBuilder source = new SearchSourceBuilder()
            .query(QueryBuilders.multiMatchQuery(text, "title", "brand"))
            .from(from)
            .size(size);
        if (ext != null) {
            source.ext(List.of(new ShoprankExt(ext)));
        }
        return new SearchRequest("products").source(source);
    }

    static List<String> ids(SearchResponse response) {
        List<String> ids = new ArrayList<>();
        for (SearchHit hit : response.getHits().getHits()) {
            ids.add(hit.getId());
        }
        return ids;
    }

    @SuppressWarnings("unchecked")
    static Map<String, Object> ext(SearchResponse response) {
        for (var builder : response.getInternalResponse().getSearchExtBuilders()) {
            if (builder instanceof ShoprankExt) {
                return ((ShoprankExt) builder).content();
            }
        }
        throw new AssertionError("no ext.shoprank in the response");
    }
}
