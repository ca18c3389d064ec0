/* The same from C: open, describe, release. embed_c BUNDLE_DIR */
#include <stdio.h>

#include <edgeport/edgeport.h>

int main(int argc, char** argv) {
    ep_session* session = NULL;
    if (argc != 2) return 2;
    if (ep_session_open(argv[1], NULL, &session) != EP_OK) {
        fprintf(stderr, "error: %s\n", ep_last_error_message());
        return 1;
    }
    for (size_t i = 0; i < ep_session_input_count(session); ++i) {
        ep_tensor_info info;
        ep_session_input_info(session, i, &info);
        printf("input %s %s rank %zu\n", info.name, ep_dtype_name(info.dtype), info.rank);
    }
    printf("libedgeport %s, artifact %s\n", ep_version(), ep_session_artifact(session));
    ep_session_release(session);
    return 0;
}
