package shoprank.opensearch.plugin;

import java.io.IOException;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;

import io.grpc.Server;
import io.grpc.Status;
import io.grpc.inprocess.InProcessServerBuilder;
import io.grpc.stub.StreamObserver;
import shoprank.v1.EmbedderGrpc;
import shoprank.v1.Rerank.EmbedRequest;
import shoprank.v1.Rerank.EmbedResponse;
import shoprank.v1.Rerank.Vector;

/** An in-process Embed service: text i of a request gets the vector [len(text), i]; fails as told; records calls. */
final class FakeEmbedder extends EmbedderGrpc.EmbedderImplBase implements AutoCloseable {
    final List<EmbedRequest> requests = new CopyOnWriteArrayList<>();
    volatile Status failWith;
    private final Server server;

    FakeEmbedder(String name) throws IOException {
        server = InProcessServerBuilder.forName(name).directExecutor().addService(this).build().start();
    }

    static List<Float> vectorOf(String text, int index) {
        return List.of((float) text.length(), (float) index);
    }

    @Override
    public void embed(EmbedRequest request, StreamObserver<EmbedResponse> observer) {
        requests.add(request);
        if (failWith != null) {
            observer.onError(failWith.asRuntimeException());
            return;
        }
        EmbedResponse.Builder reply = EmbedResponse.newBuilder().setModelVersion("bi-fake-1").setDimension(2);
        for (int i = 0; i < request.getTextsCount(); i++) {
            reply.addVectors(Vector.newBuilder().addAllValues(vectorOf(request.getTexts(i), i)));
        }
        observer.onNext(reply.build());
        observer.onCompleted();
    }

    @Override
    public void close() {
        server.shutdownNow();
    }
}
