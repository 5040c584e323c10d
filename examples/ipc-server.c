/* An IPC echo server that recovers from a stale socket file, the usual
 * Node pattern (a server killed with SIGKILL leaves its file behind, and
 * the next listen() on that path fails with EADDRINUSE):
 *
 *   server.on('error', (e) => {
 *     if (e.code !== 'EADDRINUSE') throw e;
 *     const probe = net.connect({ path }, () => {
 *       console.log(`another server is running on ${path}`);
 *       process.exit(1);
 *     });
 *     probe.on('error', (e) => {
 *       if (e.code !== 'ECONNREFUSED') throw e;
 *       fs.unlinkSync(path);             // nobody is listening: stale
 *       console.log(`removed stale socket ${path}`);
 *       server.listen(path);
 *     });
 *   });
 *   server.listen(path, () => console.log(`listening on ${path}`));
 *
 * One addition: connect() to a file that is not a socket also fails with
 * ECONNREFUSED, so the file is removed only if it is a socket.
 *
 * Usage: ipc-server PATH. Echoes back whatever a client sends. SIGINT or
 * SIGTERM close the server, which removes the socket file, and exit 0. */
#include <cnet.h>

#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *path;
static int status;
static int tries; /* listen() calls that found the path in use */
static uv_signal_t sigint, sigterm;

static void on_connection(cnet_server_t *srv, const cnet_event_t *ev,
                          void *ctx) {
  (void)srv, (void)ctx;
  cnet_socket_pipe(ev->connection, ev->connection, NULL);
}

static void on_listening(cnet_server_t *srv, const cnet_event_t *ev,
                         void *ctx) {
  (void)srv, (void)ev, (void)ctx;
  printf("listening on %s\n", path);
  fflush(stdout);
}

/* Stop listening (if we are) and let the loop run dry; main() frees. */
static void finish(cnet_server_t *srv, int code) {
  status = code;
  if (!uv_is_closing((uv_handle_t *)&sigint)) {
    uv_close((uv_handle_t *)&sigint, NULL);
    uv_close((uv_handle_t *)&sigterm, NULL);
  }
  cnet_server_close(srv, NULL, NULL);
}

static void start_listening(cnet_server_t *srv) {
  if (cnet_server_listen_path(srv, path, 0, NULL, NULL) != 0) {
    fprintf(stderr, "%s\n", cnet_last_error()->message);
    finish(srv, 1);
  }
}

/* Nobody answered at path: remove the file if it is a socket. */
static void remove_stale(cnet_server_t *srv) {
  struct stat st;

  if (lstat(path, &st) == 0 && !S_ISSOCK(st.st_mode)) {
    fprintf(stderr, "%s exists and is not a socket\n", path);
    finish(srv, 1);
    return;
  }
  if (unlink(path) != 0) {
    perror(path);
    finish(srv, 1);
    return;
  }
  printf("removed stale socket %s\n", path);
  fflush(stdout);
  start_listening(srv);
}

static void on_probe(cnet_socket_t *probe, const cnet_event_t *ev, void *ctx) {
  cnet_server_t *srv = ctx;

  if (ev->type == CNET_EV_CONNECT) {
    printf("another server is running on %s\n", path);
    fflush(stdout);
    cnet_socket_destroy(probe, NULL);
    finish(srv, 1);
  } else if (ev->error->errnum == UV_ECONNREFUSED) {
    remove_stale(srv);
  } else if (ev->error->errnum == UV_ENOENT) {
    start_listening(srv); /* the file went away meanwhile */
  } else {
    fprintf(stderr, "%s\n", ev->error->message);
    finish(srv, 1);
  }
}

/* Is anyone listening at path? The probe is cnet's: freed after 'close'. */
static void probe(cnet_server_t *srv) {
  cnet_connect_options_t opts = {.path = path};
  cnet_socket_t *s;

  s = cnet_create_connection(cnet_server_loop(srv), &opts, on_probe, srv);
  if (s == NULL) {
    fprintf(stderr, "%s\n", cnet_last_error()->message);
    finish(srv, 1);
    return;
  }
  cnet_socket_on(s, CNET_EV_ERROR, on_probe, srv);
}

static void on_error(cnet_server_t *srv, const cnet_event_t *ev, void *ctx) {
  (void)ctx;
  /* A few tries: another process may take the path between our unlink()
   * and our listen(). */
  if (ev->error->errnum == UV_EADDRINUSE && ++tries <= 3) {
    probe(srv);
    return;
  }
  fprintf(stderr, "%s\n", ev->error->message); /* Node would throw */
  finish(srv, 1);
}

static void on_signal(uv_signal_t *sig, int signum) {
  (void)signum;
  finish(sig->data, 0); /* close() unlinks the socket file */
}

static void watch_signals(uv_loop_t *loop, cnet_server_t *srv) {
  uv_signal_init(loop, &sigint);
  uv_signal_init(loop, &sigterm);
  sigint.data = sigterm.data = srv;
  uv_signal_start(&sigint, on_signal, SIGINT);
  uv_signal_start(&sigterm, on_signal, SIGTERM);
  uv_unref((uv_handle_t *)&sigint); /* the server alone keeps us running */
  uv_unref((uv_handle_t *)&sigterm);
}

int main(int argc, char **argv) {
  cnet_server_t *srv;

  if (argc != 2) {
    fprintf(stderr, "usage: ipc-server PATH\n");
    return 2;
  }
  path = argv[1];
  srv = cnet_create_server(NULL, NULL, on_connection, NULL);
  if (srv == NULL) {
    fprintf(stderr, "%s\n", cnet_last_error()->message);
    return 1;
  }
  cnet_server_on(srv, CNET_EV_LISTENING, on_listening, NULL);
  cnet_server_on(srv, CNET_EV_ERROR, on_error, NULL);
  watch_signals(uv_default_loop(), srv);
  start_listening(srv);
  cnet_run();
  cnet_server_free(srv);
  cnet_run(); /* let the last handles close */
  return uv_loop_close(uv_default_loop()) == 0 ? status : 1;
}
