package shoprank.opensearch.plugin;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import org.junit.jupiter.api.Test;
import org.opensearch.common.io.stream.BytesStreamOutput;
import org.opensearch.common.xcontent.json.JsonXContent;
import org.opensearch.core.common.bytes.BytesReference;
import org.opensearch.core.xcontent.ToXContent;
import org.opensearch.core.xcontent.XContentBuilder;

class ShoprankExtTest {
    @Test
    void roundTripsOverTheWireAndRendersUnderItsName() throws Exception {
        Map<String, Object> content = new LinkedHashMap<>();
        content.put("reranked", false);
        content.put("fail_open_reason", "unavailable: x");
        content.put("diversity_notes", List.of("n"));
        ShoprankExt ext = new ShoprankExt(content);
        BytesStreamOutput out = new BytesStreamOutput();
        ext.writeTo(out);
        assertEquals(ext, new ShoprankExt(out.bytes().streamInput()));
        XContentBuilder builder = JsonXContent.contentBuilder().startObject();
        ext.toXContent(builder, ToXContent.EMPTY_PARAMS);
        builder.endObject();
        String json = BytesReference.bytes(builder).utf8ToString();
        assertTrue(json.startsWith("{\"shoprank\":{\"reranked\":false"), json);
    }
}
