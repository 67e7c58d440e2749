package shoprank.opensearch.plugin;

import java.io.IOException;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;

import io.grpc.Server;
import io.grpc.Status;
import io.grpc.inprocess.InProcessServerBuilder;
import io.grpc.stub.StreamObserver;
import shoprank.v1.Rerank.Candidate;
import shoprank.v1.Rerank.Explanation;
import shoprank.v1.Rerank.RerankRequest;
import shoprank.v1.Rerank.RerankResponse;
import shoprank.v1.Rerank.ScoredResult;
import shoprank.v1.Rerank.StageTimings;
import shoprank.v1.RerankerGrpc;

/** An in-process sidecar: reverses the window (scores 1000, 999, ...) or fails as told; records calls. */
final class FakeSidecar extends RerankerGrpc.RerankerImplBase implements AutoCloseable {
    final List<RerankRequest> requests = new CopyOnWriteArrayList<>();
    volatile Status failWith;
    volatile long sleepMs;
    private final Server server;

    FakeSidecar(String name) throws IOException {
        server = InProcessServerBuilder.forName(name).directExecutor().addService(this).build().start();
    }

    @Override
    public void rerank(RerankRequest request, StreamObserver<RerankResponse> observer) {
        requests.add(request);
        if (sleepMs > 0) {
            try {
                Thread.sleep(sleepMs);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
        if (failWith != null) {
            observer.onError(failWith.asRuntimeException());
            return;
        }
        List<Candidate> reversed = new ArrayList<>(request.getCandidatesList());
        java.util.Collections.reverse(reversed);
        RerankResponse.Builder reply = RerankResponse.newBuilder()
            .setReranked(true)
            .setModelVersion("fake-1")
            .setDiversityMethod("none")
            .addDiversityNotes("a note")
            .setTimings(StageTimings.newBuilder().setTotalMs(1.5f));
        for (int i = 0; i < reversed.size(); i++) {
            ScoredResult.Builder result = ScoredResult.newBuilder()
                .setId(reversed.get(i).getId())
                .setScore(1000f - i)
                .setRelevanceScore(7f);
            if (request.getOptions().getExplain()) {
                result.setExplanation(Explanation.newBuilder().setFinalRank(i).setReason("moved"));
            }
            reply.addResults(result);
        }
        observer.onNext(reply.build());
        observer.onCompleted();
    }

    @Override
    public void close() {
        server.shutdownNow();
    }
}
