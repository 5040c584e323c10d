/* uv-echo: the echo server a competent libuv user writes, as the raw-libuv
 * peer of cnet's examples/echo-server --bench.
 *
 *   uv-echo [--try-write] [PORT|PATH]
 *
 * A number is a TCP port on 0.0.0.0 (0: any free one, printed as
 * "listening on PORT"), anything else a Unix socket path; 8124 by default.
 * Backlog 511, as Node's.
 *
 * Plain mode is libuv's own guide: alloc_cb mallocs the suggested size, each
 * read is handed to uv_write with that buffer, freed in the write callback.
 * Unlike the guide, it stops reading while more than 64 KiB wait to be
 * written (the backpressure any real server needs), so a slow reader cannot
 * make it buffer without bound.
 *
 * --try-write reads into one 64 KiB buffer per loop and writes it with
 * uv_try_write; only what the kernel did not take is copied into a write
 * request, and reading stops until that request completes.
 *
 * Accepted TCP sockets keep the kernel's default, Nagle on, as Node's net
 * and cnet do (see bench/epoll-echo.c).
 *
 * An idle connection costs one malloc'd uv_tcp_t (or uv_pipe_t) either way.
 * SIGTERM and SIGINT end it at once (the default action). */
#include <uv.h>

#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HIGH_WATER (64 * 1024)

typedef struct {
  uv_write_t req;
  uv_buf_t buf;
} write_req_t;

static bool try_write;
static bool is_pipe;
static char slab[64 * 1024]; /* --try-write: the loop's one read buffer */
static bool slab_busy;

static void on_close(uv_handle_t *h) {
  free(h);
}

static void close_client(uv_stream_t *client) {
  if (!uv_is_closing((uv_handle_t *)client))
    uv_close((uv_handle_t *)client, on_close);
}

static void alloc_malloc(uv_handle_t *h, size_t size, uv_buf_t *buf) {
  (void)h;
  buf->base = malloc(size);
  buf->len = buf->base != NULL ? size : 0;
}

static void alloc_slab(uv_handle_t *h, size_t size, uv_buf_t *buf) {
  (void)h, (void)size;
  /* One read callback runs at a time, but be safe if that ever changes. */
  if (slab_busy) {
    alloc_malloc(h, size, buf);
    return;
  }
  slab_busy = true;
  *buf = uv_buf_init(slab, sizeof(slab));
}

static void release(const uv_buf_t *buf) {
  if (buf->base == slab)
    slab_busy = false;
  else
    free(buf->base);
}

static void on_read(uv_stream_t *client, ssize_t nread, const uv_buf_t *buf);

static void on_write(uv_write_t *req, int status) {
  write_req_t *wr = (write_req_t *)req;
  uv_stream_t *client = req->handle;

  free(wr->buf.base);
  free(wr);
  if (status < 0) {
    close_client(client);
    return;
  }
  if (client->write_queue_size <= HIGH_WATER &&
      !uv_is_closing((uv_handle_t *)client))
    uv_read_start(client, try_write ? alloc_slab : alloc_malloc, on_read);
}

/* Queue `len` bytes at `base` (owned by the caller's malloc, or copied from
 * the slab) and stop reading if too much is queued. */
static void queue_write(uv_stream_t *client, char *base, size_t len) {
  write_req_t *wr = malloc(sizeof(*wr));

  if (wr == NULL) {
    free(base);
    close_client(client);
    return;
  }
  wr->buf = uv_buf_init(base, (unsigned int)len);
  if (uv_write(&wr->req, client, &wr->buf, 1, on_write) != 0) {
    free(base);
    free(wr);
    close_client(client);
    return;
  }
  if (client->write_queue_size > HIGH_WATER || try_write)
    uv_read_stop(client);
}

static void echo_try_write(uv_stream_t *client, const uv_buf_t *buf,
                           size_t len) {
  int n = 0;
  char *rest;

  if (client->write_queue_size == 0)
    n = uv_try_write(client, &(uv_buf_t){.base = buf->base, .len = len}, 1);
  if (n == UV_EAGAIN)
    n = 0;
  if (n < 0) {
    close_client(client);
    return;
  }
  if ((size_t)n == len)
    return;
  rest = malloc(len - (size_t)n);
  if (rest == NULL) {
    close_client(client);
    return;
  }
  memcpy(rest, buf->base + n, len - (size_t)n);
  queue_write(client, rest, len - (size_t)n);
}

static void on_read(uv_stream_t *client, ssize_t nread, const uv_buf_t *buf) {
  if (nread > 0) {
    if (buf->base == slab) {
      echo_try_write(client, buf, (size_t)nread);
      release(buf);
    } else {
      queue_write(client, buf->base, (size_t)nread);
    }
    return;
  }
  if (buf->base != NULL)
    release(buf);
  if (nread < 0)
    close_client(client);
}

static void on_connection(uv_stream_t *server, int status) {
  uv_stream_t *client;

  if (status < 0)
    return; /* EMFILE and the like: libuv retries on the next event */
  client = malloc(is_pipe ? sizeof(uv_pipe_t) : sizeof(uv_tcp_t));
  if (client == NULL)
    return;
  if (is_pipe)
    uv_pipe_init(server->loop, (uv_pipe_t *)client, 0);
  else
    uv_tcp_init(server->loop, (uv_tcp_t *)client);
  if (uv_accept(server, client) != 0) {
    uv_close((uv_handle_t *)client, on_close);
    return;
  }
  uv_read_start(client, try_write ? alloc_slab : alloc_malloc, on_read);
}

int main(int argc, char **argv) {
  const char *where = "8124";
  uv_loop_t *loop = uv_default_loop();
  union {
    uv_tcp_t tcp;
    uv_pipe_t pipe;
  } server;
  char *end;
  long port;
  int err;

  signal(SIGPIPE, SIG_IGN); /* a client gone: EPIPE, not death (as Node) */
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--try-write") == 0)
      try_write = true;
    else
      where = argv[i];
  }
  port = strtol(where, &end, 10);
  is_pipe = *where == '\0' || *end != '\0';
  if (is_pipe) {
    uv_pipe_init(loop, &server.pipe, 0);
    err = uv_pipe_bind(&server.pipe, where);
  } else {
    struct sockaddr_in addr;

    uv_tcp_init(loop, &server.tcp);
    uv_ip4_addr("0.0.0.0", (int)port, &addr);
    err = uv_tcp_bind(&server.tcp, (const struct sockaddr *)&addr, 0);
  }
  if (err == 0)
    err = uv_listen((uv_stream_t *)&server, 511, on_connection);
  if (err != 0) {
    fprintf(stderr, "uv-echo: listen %s: %s\n", where, uv_strerror(err));
    return 1;
  }
  if (!is_pipe) {
    struct sockaddr_storage ss;
    int len = sizeof(ss);

    uv_tcp_getsockname(&server.tcp, (struct sockaddr *)&ss, &len);
    printf("listening on %d\n", ntohs(((struct sockaddr_in *)&ss)->sin_port));
  } else {
    printf("listening on %s\n", where);
  }
  fflush(stdout);
  return uv_run(loop, UV_RUN_DEFAULT);
}
