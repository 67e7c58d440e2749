package shoprank.opensearch.plugin;

import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;

import shoprank.v1.Rerank.DiversityFacet;
import shoprank.v1.Rerank.DiversityMethod;
import shoprank.v1.Rerank.DiversityOptions;

/** The processor's diversity settings (pipeline config) and their proto form for one request. */
final class Diversity {
    static final Set<String> KEYS =
        Set.of("method", "strength", "max_per_brand", "max_per_category", "window", "facets", "attribute_weight");
    private static final Map<String, DiversityMethod> METHODS = Map.of(
        "none", DiversityMethod.DIVERSITY_METHOD_NONE,
        "mmr", DiversityMethod.DIVERSITY_METHOD_MMR,
        "xquad", DiversityMethod.DIVERSITY_METHOD_XQUAD,
        "dpp", DiversityMethod.DIVERSITY_METHOD_DPP);
    private static final Map<String, DiversityFacet> FACETS = Map.of(
        "category", DiversityFacet.DIVERSITY_FACET_CATEGORY,
        "brand", DiversityFacet.DIVERSITY_FACET_BRAND);

    final String method; // null: the sidecar's default
    final Float strength;
    final Integer maxPerBrand;
    final Integer maxPerCategory;
    final Integer dppWindow;
    final List<String> facets;
    final Float attributeWeight;

    Diversity(String method, Float strength, Integer maxPerBrand, Integer maxPerCategory, Integer dppWindow,
              List<String> facets, Float attributeWeight) {
        this.method = method;
        this.strength = strength;
        this.maxPerBrand = maxPerBrand;
        this.maxPerCategory = maxPerCategory;
        this.dppWindow = dppWindow;
        this.facets = facets;
        this.attributeWeight = attributeWeight;
    }

    static Diversity parse(Config config) {
        String method = config.string("method", null);
        if (method != null) {
            method = checkMethod(config, "method", method);
        }
        Float strength = config.unitInterval("strength");
        Integer maxPerBrand = config.integer("max_per_brand", null, 1, 10_000);
        Integer maxPerCategory = config.integer("max_per_category", null, 1, 10_000);
        Integer window = config.integer("window", null, 1, 10_000);
        List<String> facets = new ArrayList<>();
        for (String facet : config.strings("facets")) {
            String name = facet.toLowerCase(Locale.ROOT);
            if (!FACETS.containsKey(name)) {
                throw config.error("facets", "unknown facet " + facet + "; use category and/or brand");
            }
            if (facets.contains(name)) {
                throw config.error("facets", facet + " is listed twice");
            }
            facets.add(name);
        }
        Float attributeWeight = config.unitInterval("attribute_weight");
        config.rejectUnknown(KEYS);
        return new Diversity(method, strength, maxPerBrand, maxPerCategory, window, facets, attributeWeight);
    }

    static String checkMethod(Config config, String key, String method) {
        String name = method.toLowerCase(Locale.ROOT);
        if (!METHODS.containsKey(name)) {
            throw config.error(key, "unknown diversity method " + method + "; use none, mmr, xquad or dpp");
        }
        return name;
    }

    /** Whether the method (after the request's override) diversifies on embeddings. */
    static boolean usesEmbeddings(String method) {
        return "mmr".equals(method) || "dpp".equals(method);
    }

    /** The options for one request: the request's method/strength override the pipeline's. */
    DiversityOptions toProto(RequestOverrides overrides, int pageSize) {
        DiversityOptions.Builder out = DiversityOptions.newBuilder();
        String chosen = overrides.method != null ? overrides.method : method;
        if (chosen != null) {
            out.setMethod(METHODS.get(chosen));
        }
        Float chosenStrength = overrides.strength != null ? overrides.strength : strength;
        if (chosenStrength != null) {
            out.setStrength(chosenStrength);
        }
        if (maxPerBrand != null) {
            out.setMaxPerBrand(maxPerBrand);
        }
        if (maxPerCategory != null) {
            out.setMaxPerCategory(maxPerCategory);
        }
        if (dppWindow != null) {
            out.setWindow(dppWindow);
        }
        for (String facet : facets) {
            out.addFacets(FACETS.get(facet));
        }
        if (attributeWeight != null) {
            out.setAttributeWeight(attributeWeight);
        }
        if (pageSize > 0) {
            // Caps hold per page of the window, as the front door asks for them.
            out.setPageSize(pageSize);
        }
        return out.build();
    }
}
