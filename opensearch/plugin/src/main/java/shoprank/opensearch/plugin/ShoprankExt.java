package shoprank.opensearch.plugin;

import java.io.IOException;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Objects;

import org.opensearch.core.common.io.stream.StreamInput;
import org.opensearch.core.common.io.stream.StreamOutput;
import org.opensearch.core.xcontent.XContentBuilder;
import org.opensearch.core.xcontent.XContentParser;
import org.opensearch.search.SearchExtBuilder;

/**
 * The {@code ext.shoprank} object of a search request (per-request overrides, see
 * {@link RequestOverrides}) and of a search response (what the rerank did). One registered name
 * for both directions, its content a plain JSON object.
 */
public final class ShoprankExt extends SearchExtBuilder {
    public static final String NAME = "shoprank";

    private final Map<String, Object> content;

    public ShoprankExt(Map<String, Object> content) {
        this.content = Collections.unmodifiableMap(new LinkedHashMap<>(content));
    }

    public ShoprankExt(StreamInput in) throws IOException {
        this(in.readMap());
    }

    /** Parses the object after the {@code shoprank} key. */
    public static ShoprankExt fromXContent(XContentParser parser) throws IOException {
        if (parser.currentToken() != XContentParser.Token.START_OBJECT && parser.nextToken() != XContentParser.Token.START_OBJECT) {
            throw new IllegalArgumentException("ext.shoprank must be a JSON object");
        }
        return new ShoprankExt(parser.map());
    }

    public Map<String, Object> content() {
        return content;
    }

    @Override
    public String getWriteableName() {
        return NAME;
    }

    @Override
    public void writeTo(StreamOutput out) throws IOException {
        out.writeMap(content);
    }

    @Override
    public XContentBuilder toXContent(XContentBuilder builder, Params params) throws IOException {
        return builder.field(NAME, content);
    }

    @Override
    public int hashCode() {
        return Objects.hash(content);
    }

    @Override
    public boolean equals(Object other) {
        return other instanceof ShoprankExt && ((ShoprankExt) other).content.equals(content);
    }
}
