package shoprank.opensearch.plugin;

import java.io.IOException;
import java.util.Map;

import org.apache.lucene.search.Query;
import org.opensearch.core.common.io.stream.StreamOutput;
import org.opensearch.core.xcontent.XContentBuilder;
import org.opensearch.index.query.QueryBuilder;
import org.opensearch.index.query.QueryShardContext;

/**
 * A query given by its JSON form: stands in for the knn, neural and hybrid builders of plugins that
 * are not on the unit tests' classpath (the live tests use the real ones).
 */
final class JsonQuery implements QueryBuilder {
    final Map<String, Object> json;

    JsonQuery(Map<String, Object> json) {
        this.json = json;
    }

    @Override
    public XContentBuilder toXContent(XContentBuilder builder, Params params) throws IOException {
        return builder.map(json);
    }

    @Override
    public Query toQuery(QueryShardContext context) {
        throw new UnsupportedOperationException("a test stand-in");
    }

    @Override
    public QueryBuilder queryName(String name) {
        return this;
    }

    @Override
    public String queryName() {
        return null;
    }

    @Override
    public float boost() {
        return 1f;
    }

    @Override
    public QueryBuilder boost(float boost) {
        return this;
    }

    @Override
    public String getName() {
        return "json";
    }

    @Override
    public String getWriteableName() {
        return "json";
    }

    @Override
    public void writeTo(StreamOutput out) {
        throw new UnsupportedOperationException("a test stand-in");
    }
}
