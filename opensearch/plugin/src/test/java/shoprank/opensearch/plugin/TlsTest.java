package shoprank.opensearch.plugin;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class TlsTest {
    @TempDir
    Path config;

    private RerankConfig parse(Map<String, Object> tls) {
        Map<String, Object> raw = new HashMap<>(Map.of("targets", List.of("sidecar:50051")));
        raw.put("tls", tls);
        return RerankConfig.parse(raw, config);
    }

    @Test
    void plaintextWithoutTls() {
        assertNull(RerankConfig.parse(new HashMap<>(Map.of("targets", List.of("a:1"))), config).tls);
    }

    @Test
    void relativePathsAreUnderTheConfigDirectory() throws Exception {
        Files.writeString(config.resolve("ca.pem"), "x");
        Tls tls = parse(Map.of("ca_file", "ca.pem", "server_name", "sidecar.internal")).tls;
        assertEquals(config.resolve("ca.pem").toFile(), tls.caFile);
        assertEquals("sidecar.internal", tls.serverName);
        assertNull(tls.certFile);
    }

    @Test
    void mtlsNeedsBothFilesThatExist() throws Exception {
        Files.writeString(config.resolve("cert.pem"), "x");
        String half = assertThrows(IllegalArgumentException.class, () -> parse(Map.of("cert_file", "cert.pem"))).getMessage();
        assertTrue(half.contains("both cert_file and key_file"), half);
        String missing = assertThrows(IllegalArgumentException.class,
            () -> parse(Map.of("cert_file", "cert.pem", "key_file", "nope.pem"))).getMessage();
        assertTrue(missing.contains("nope.pem is not a readable file"), missing);
        String unknown = assertThrows(IllegalArgumentException.class, () -> parse(Map.of("ca", "x"))).getMessage();
        assertTrue(unknown.contains("unknown key"), unknown);
    }
}
