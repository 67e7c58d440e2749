package shoprank.opensearch.plugin;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;

/**
 * Reads a processor's (or an ext's) JSON object key by key with clear errors. Each read removes
 * the key, so {@link #rejectUnknown} can name whatever was misspelt.
 */
final class Config {
    private final String where;
    private final Map<String, Object> map;

    Config(String where, Map<String, Object> map) {
        this.where = where;
        this.map = map;
    }

    String where() {
        return where;
    }

    boolean has(String key) {
        return map.containsKey(key) && map.get(key) != null;
    }

    IllegalArgumentException error(String key, String problem) {
        return new IllegalArgumentException("[" + where + "] " + key + ": " + problem);
    }

    String string(String key, String fallback) {
        Object value = map.remove(key);
        if (value == null) {
            return fallback;
        }
        if (!(value instanceof String)) {
            throw error(key, "must be a string, got " + value);
        }
        return (String) value;
    }

    Boolean bool(String key, Boolean fallback) {
        Object value = map.remove(key);
        if (value == null) {
            return fallback;
        }
        if (value instanceof Boolean) {
            return (Boolean) value;
        }
        if ("true".equals(value) || "false".equals(value)) {
            return Boolean.parseBoolean((String) value);
        }
        throw error(key, "must be true or false, got " + value);
    }

    Integer integer(String key, Integer fallback, int min, int max) {
        Object value = map.remove(key);
        if (value == null) {
            return fallback;
        }
        long parsed;
        if (value instanceof Number && ((Number) value).doubleValue() == Math.rint(((Number) value).doubleValue())) {
            parsed = ((Number) value).longValue();
        } else if (value instanceof String && ((String) value).matches("-?[0-9]+")) {
            parsed = Long.parseLong((String) value);
        } else {
            throw error(key, "must be an integer, got " + value);
        }
        if (parsed < min || parsed > max) {
            throw error(key, "must be in [" + min + ", " + max + "], got " + parsed);
        }
        return (int) parsed;
    }

    Float unitInterval(String key) {
        Object value = map.remove(key);
        if (value == null) {
            return null;
        }
        double parsed;
        if (value instanceof Number) {
            parsed = ((Number) value).doubleValue();
        } else {
            try {
                parsed = Double.parseDouble(String.valueOf(value));
            } catch (NumberFormatException e) {
                throw error(key, "must be a number in [0, 1], got " + value);
            }
        }
        if (!(parsed >= 0.0 && parsed <= 1.0)) {
            throw error(key, "must be in [0, 1], got " + value);
        }
        return (float) parsed;
    }

    /** A list of strings; a single string counts as a list of one. */
    List<String> strings(String key) {
        Object value = map.remove(key);
        List<String> out = new ArrayList<>();
        if (value == null) {
            return out;
        }
        if (value instanceof String) {
            out.add((String) value);
            return out;
        }
        if (!(value instanceof List)) {
            throw error(key, "must be a string or a list of strings, got " + value);
        }
        for (Object item : (List<?>) value) {
            if (!(item instanceof String)) {
                throw error(key, "must list strings, got " + item);
            }
            out.add((String) item);
        }
        return out;
    }

    /** A nested object (empty when absent). */
    @SuppressWarnings("unchecked")
    Config object(String key) {
        Object value = map.remove(key);
        if (value == null) {
            return new Config(where + "." + key, new java.util.HashMap<>());
        }
        if (!(value instanceof Map)) {
            throw error(key, "must be an object, got " + value);
        }
        return new Config(where + "." + key, new java.util.HashMap<>((Map<String, Object>) value));
    }

    /** Everything not read yet, as text values (for open-ended maps such as field mappings). */
    Map<String, String> remainingStrings(Set<String> allowedKeys) {
        Map<String, String> out = new java.util.LinkedHashMap<>();
        for (String key : new ArrayList<>(map.keySet())) {
            if (!allowedKeys.contains(key)) {
                throw error(key, "unknown key; allowed: " + new TreeSet<>(allowedKeys));
            }
            Object value = map.remove(key);
            if (value != null && !(value instanceof String)) {
                throw error(key, "must be a string, got " + value);
            }
            out.put(key, (String) value);
        }
        return out;
    }

    void rejectUnknown(Set<String> allowedKeys) {
        if (!map.isEmpty()) {
            Set<String> unknown = new TreeSet<>(map.keySet());
            throw new IllegalArgumentException(
                "[" + where + "] unknown key(s) " + unknown + "; allowed: " + new TreeSet<>(allowedKeys));
        }
    }
}
