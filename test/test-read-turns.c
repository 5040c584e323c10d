/* Reading in turns (src/stream.c, yield_after_full_read): a read that fills
 * the loop's 64 KiB slab makes its socket wait for the loop's next turn
 * before it reads again, so connections with a lot waiting take turns
 * instead of one reading up to 32 slabs (2 MiB) at a time, which is what
 * libuv alone does. Nothing of this may show in the bytes: every byte
 * arrives, in order; a socket paused or destroyed while it waits for its
 * turn stays paused or is simply gone.
 *
 * The scene: a server with pause_on_connect accepts two connections whose
 * clients each write 4 MiB at once; after 300 ms (the kernel's buffers
 * full) the server resumes both and records which socket each 'data' came
 * from. */
#include "harness.h"

#define CLIENT_BYTES (4u << 20)

static struct {
  cnet_server_t *srv;
  cnet_socket_t *acc[2];
  int accepted;
  uint64_t got[2];
  int last;         /* the socket of the previous full 'data' */
  int run, max_run; /* consecutive full reads from one socket, while the
                       other still has bytes to come */
  int full_reads;
  int closes;
  bool pause_first; /* pause acc[0] in its first 'data' */
  bool destroy_first;
  uv_timer_t resume_timer;
  char *buf;
} R;

static unsigned char pat(uint64_t i, int who) {
  return (unsigned char)((i * 7 + (uint64_t)who * 13) ^ (i >> 9));
}

static void on_data(cnet_socket_t *s, const cnet_event_t *ev, void *ctx) {
  int who = (int)(intptr_t)ctx;

  for (size_t i = 0; i < ev->data.len; i++)
    if ((unsigned char)ev->data.base[i] != pat(R.got[who] + i, who))
      FAIL("socket %d: byte %llu differs", who,
           (unsigned long long)(R.got[who] + i));
  R.got[who] += ev->data.len;
  if (ev->data.len == 65536 && R.got[1 - who] < CLIENT_BYTES) {
    R.full_reads++;
    R.run = who == R.last ? R.run + 1 : 1;
    R.last = who;
    if (R.run > R.max_run)
      R.max_run = R.run;
  }
  if (who == 0 && R.pause_first && R.got[0] == ev->data.len) {
    cnet_socket_pause(s); /* possibly while it waits for its turn */
    ASSERT(cnet_socket_is_paused(s));
  }
  if (who == 0 && R.destroy_first && R.got[0] == ev->data.len)
    cnet_socket_destroy(s, NULL);
}

static void on_close(cnet_socket_t *s, const cnet_event_t *ev, void *ctx) {
  (void)s;
  (void)ev;
  (void)ctx;
  R.closes++;
}

static void resume_both(uv_timer_t *t) {
  for (int i = 0; i < 2; i++)
    cnet_socket_resume(R.acc[i]);
  uv_close((uv_handle_t *)t, NULL);
}

static void on_connection(cnet_server_t *srv, const cnet_event_t *ev,
                          void *ctx) {
  cnet_socket_t *s = ev->connection;
  int who = R.accepted++;

  (void)ctx;
  ASSERT(cnet_socket_is_paused(s)); /* pause_on_connect */
  R.acc[who] = s;
  ASSERT_EQ(0, cnet_socket_on(s, CNET_EV_DATA, on_data, (void *)(intptr_t)who));
  ASSERT_EQ(0, cnet_socket_on(s, CNET_EV_CLOSE, on_close, NULL));
  if (R.accepted == 2) {
    cnet_server_close(srv, NULL, NULL);
    ASSERT_EQ(0, uv_timer_init(cnet_server_loop(srv), &R.resume_timer));
    ASSERT_EQ(0, uv_timer_start(&R.resume_timer, resume_both, 300, 0));
  }
}

static void client_connect(cnet_socket_t *c, const cnet_event_t *ev,
                           void *ctx) {
  int who = (int)(intptr_t)ctx;
  char *b = R.buf + (size_t)who * CLIENT_BYTES;

  (void)ev;
  for (uint64_t i = 0; i < CLIENT_BYTES; i++)
    b[i] = (char)pat(i, who);
  ASSERT_EQ(0, cnet_socket_write(c, b, CLIENT_BYTES, NULL, NULL));
  ASSERT_EQ(0, cnet_socket_end(c, NULL, 0, NULL, NULL));
}

static void quiet(cnet_socket_t *s, const cnet_event_t *ev, void *ctx) {
  (void)s;
  (void)ev;
  (void)ctx;
}

static void stop_loop(uv_timer_t *t) {
  uv_stop(t->loop);
  uv_close((uv_handle_t *)t, NULL);
}

/* Returns after the loop ran; the caller checks what it needs. */
static void run_scene(bool pause_first, bool destroy_first) {
  uv_loop_t *loop = loop_new();
  cnet_server_options_t so = {.pause_on_connect = true};
  cnet_connect_options_t o = {.host = "127.0.0.1"};
  cnet_socket_t *c[2];

  memset(&R, 0, sizeof(R));
  R.last = -1;
  R.pause_first = pause_first;
  R.destroy_first = destroy_first;
  R.buf = malloc(2 * (size_t)CLIENT_BYTES);
  ASSERT_NOT_NULL(R.buf);
  R.srv = cnet_create_server(loop, &so, on_connection, NULL);
  ASSERT_NOT_NULL(R.srv);
  ASSERT_EQ(0, cnet_server_listen_port(R.srv, 0, "127.0.0.1", 0, NULL, NULL));
  o.port = server_port(R.srv);
  for (int i = 0; i < 2; i++) {
    c[i] =
        cnet_create_connection(loop, &o, client_connect, (void *)(intptr_t)i);
    ASSERT_NOT_NULL(c[i]);
    ASSERT_EQ(0, cnet_socket_on(c[i], CNET_EV_ERROR, quiet, NULL));
  }
  if (pause_first) { /* acc[0] stays paused: end the scene by hand */
    uv_timer_t stop;

    ASSERT_EQ(0, uv_timer_init(loop, &stop));
    ASSERT_EQ(0, uv_timer_start(&stop, stop_loop, 1500, 0));
    uv_run(loop, UV_RUN_DEFAULT);
    ASSERT(cnet_socket_is_paused(R.acc[0]));
    ASSERT_EQ(65536, R.got[0]); /* nothing read after the pause */
    ASSERT_EQ(CLIENT_BYTES, R.got[1]);
    cnet_socket_destroy(R.acc[0], NULL);
    cnet_socket_destroy(c[0], NULL);
  }
  run_bounded(loop, 8000);
  cnet_server_free(R.srv);
  loop_finish(loop);
  free(R.buf);
}

TEST_CASE(rt01_full_reads_take_turns_and_every_byte_arrives) {
  run_scene(false, false);
  printf("# %d full reads, longest run from one socket %d\n", R.full_reads,
         R.max_run);
  ASSERT_EQ(CLIENT_BYTES, R.got[0]);
  ASSERT_EQ(CLIENT_BYTES, R.got[1]);
  ASSERT_EQ(2, R.closes);
  ASSERT_GT(R.full_reads, 8); /* the scene did fill the slab */
  /* libuv alone: runs of up to 32. Taking turns: one socket may have a
   * second read in a row only when the other had nothing waiting. */
  ASSERT_LT(R.max_run, 8);
}

TEST_CASE(rt02_pause_while_waiting_for_its_turn_holds) {
  run_scene(true, false);
  ASSERT_EQ(2, R.closes);
}

TEST_CASE(rt03_destroy_while_waiting_for_its_turn) {
  run_scene(false, true);
  ASSERT_EQ(65536, R.got[0]);
  ASSERT_EQ(CLIENT_BYTES, R.got[1]);
  ASSERT_EQ(2, R.closes);
}
