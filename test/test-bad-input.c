/* Bad input to every public function (issue 5).
 *
 * For each function in include/cnet.h: NULL pointers (object, options,
 * callback, buffer, string), ports out of range, unknown encodings,
 * negative timeouts, Unix paths longer than sun_path or with an embedded
 * NUL where a length is given, bad address families, zero lengths where
 * they are invalid. Each case asserts that
 *
 *   - the call fails at once with Node's code (the negative number, its
 *     cnet_err_name, and cnet_last_error() holding exactly that error and
 *     Node's message -- REFUSED below primes the last error first, so a
 *     stale one cannot pass for it);
 *   - nothing crashes (ASan and valgrind runs of this file are the other
 *     half of that);
 *   - nothing changed: the socket still writes and the next good write
 *     arrives intact, the server still listens, the previous timeout,
 *     encoding or onread still applies, no listener was added, no event
 *     follows.
 *
 * The rules for what C adds to Node (cnet's own, checked here):
 *   - int functions: a NULL object is UV_EINVAL ("invalid argument"),
 *     except where Node has a code for the call (write/end/connect and
 *     the listen(options/port/path) forms: ERR_INVALID_ARG_TYPE naming the
 *     argument) and the address getters (a NULL object is "not connected",
 *     UV_ENOTCONN; a NULL out is UV_EINVAL); every negative return made at
 *     once for misuse is also in cnet_last_error();
 *   - void functions on NULL do nothing; getters on NULL answer what an
 *     empty object would (0, false, NULL, "closed", pending true);
 *   - size_t codecs on NULL (decoder, input, output) write nothing and
 *     return 0.
 *
 * bi00 keeps this honest: it reads include/cnet.h (via CNET_SOURCE_DIR,
 * which CTest sets, else next to this file) and fails if a CNET_EXTERN
 * function is missing from the table below, or is not called inside the
 * case the table names. */
#include "harness.h"

#include <limits.h>
#include <sys/un.h>

/* ---- the coverage table ------------------------------------------------- */

typedef struct {
  const char *fn; /* a CNET_EXTERN function */
  const char *tc; /* the TEST_CASE that gives it bad input */
} coverage_t;

static const coverage_t coverage[] = {
    /* errors */
    {"cnet_err_name", "bi01_errors"},
    {"cnet_strerror", "bi01_errors"},
    {"cnet_last_error", "bi01_errors"},
    {"cnet_set_unhandled_error_handler", "bi01_errors"},
    /* events, families */
    {"cnet_event_name", "bi02_event_and_family_names"},
    {"cnet_family_name", "bi02_event_and_family_names"},
    /* emitters */
    {"cnet_socket_on", "bi03_socket_listeners"},
    {"cnet_socket_once", "bi03_socket_listeners"},
    {"cnet_socket_prepend_listener", "bi03_socket_listeners"},
    {"cnet_socket_off", "bi03_socket_listeners"},
    {"cnet_socket_listener_count", "bi03_socket_listeners"},
    {"cnet_server_on", "bi04_server_listeners"},
    {"cnet_server_once", "bi04_server_listeners"},
    {"cnet_server_prepend_listener", "bi04_server_listeners"},
    {"cnet_server_off", "bi04_server_listeners"},
    {"cnet_server_listener_count", "bi04_server_listeners"},
    /* loop, allocator */
    {"cnet_run", "bi05_run_and_allocator"},
    {"cnet_replace_allocator", "bi05_run_and_allocator"},
    /* IP utilities */
    {"cnet_is_ip", "bi06_is_ip"},
    {"cnet_is_ipv4", "bi06_is_ip"},
    {"cnet_is_ipv6", "bi06_is_ip"},
    {"cnet_is_ip_n", "bi06_is_ip"},
    {"cnet_socket_address_init", "bi07_socket_address_init"},
    {"cnet_socket_address_parse", "bi08_socket_address_parse_format"},
    {"cnet_socket_address_format", "bi08_socket_address_parse_format"},
    {"cnet_block_list_new", "bi09_block_list_add"},
    {"cnet_block_list_free", "bi09_block_list_add"},
    {"cnet_block_list_add_address", "bi09_block_list_add"},
    {"cnet_block_list_add_range", "bi09_block_list_add"},
    {"cnet_block_list_add_subnet", "bi09_block_list_add"},
    {"cnet_block_list_add_rule", "bi09_block_list_add"},
    {"cnet_block_list_check", "bi10_block_list_read"},
    {"cnet_block_list_check_sockaddr", "bi10_block_list_read"},
    {"cnet_block_list_rule_count", "bi10_block_list_read"},
    {"cnet_block_list_rule", "bi10_block_list_read"},
    /* encodings */
    {"cnet_encoding_from_name", "bi11_encoding_names"},
    {"cnet_encoding_name", "bi11_encoding_names"},
    {"cnet_decoder_init", "bi12_decoder"},
    {"cnet_decoder_max_length", "bi12_decoder"},
    {"cnet_decoder_write", "bi12_decoder"},
    {"cnet_decoder_end", "bi12_decoder"},
    {"cnet_encode_max_length", "bi13_encode"},
    {"cnet_encode", "bi13_encode"},
    /* server */
    {"cnet_create_server", "bi14_create_server"},
    {"cnet_server_loop", "bi14_create_server"},
    {"cnet_server_listen", "bi15_server_listen_options"},
    {"cnet_server_listen_port", "bi16_server_listen_port_and_path"},
    {"cnet_server_listen_path", "bi16_server_listen_port_and_path"},
    {"cnet_server_listen_fd", "bi17_server_listen_handles"},
    {"cnet_server_listen_server", "bi17_server_listen_handles"},
    {"cnet_server_listen_socket", "bi17_server_listen_handles"},
    {"cnet_server_address", "bi18_server_properties"},
    {"cnet_server_listening", "bi18_server_properties"},
    {"cnet_server_connections", "bi18_server_properties"},
    {"cnet_server_max_connections", "bi18_server_properties"},
    {"cnet_server_set_max_connections", "bi18_server_properties"},
    {"cnet_server_accept_errors", "bi18_server_properties"},
    {"cnet_server_blocked", "bi18_server_properties"},
    {"cnet_server_ref", "bi18_server_properties"},
    {"cnet_server_unref", "bi18_server_properties"},
    {"cnet_server_set_data", "bi18_server_properties"},
    {"cnet_server_get_data", "bi18_server_properties"},
    {"cnet_server_free", "bi18_server_properties"},
    {"cnet_server_close", "bi19_server_close_family"},
    {"cnet_server_close_idle", "bi19_server_close_family"},
    {"cnet_server_close_gracefully", "bi19_server_close_family"},
    {"cnet_server_get_connections", "bi19_server_close_family"},
    /* name lookup, autoselection defaults */
    {"cnet_lookup_done", "bi20_lookup_answers"},
    {"cnet_lookup_fail", "bi20_lookup_answers"},
    {"cnet_lookup_loop", "bi20_lookup_answers"},
    {"cnet_lookup_system", "bi20_lookup_answers"},
    {"cnet_get_default_auto_select_family", "bi21_auto_select_defaults"},
    {"cnet_set_default_auto_select_family", "bi21_auto_select_defaults"},
    {"cnet_get_default_auto_select_family_attempt_timeout",
     "bi21_auto_select_defaults"},
    {"cnet_set_default_auto_select_family_attempt_timeout",
     "bi21_auto_select_defaults"},
    /* socket: making and connecting */
    {"cnet_socket_new", "bi22_socket_new"},
    {"cnet_socket_connect", "bi23_socket_connect_options"},
    {"cnet_socket_connect_port", "bi24_socket_connect_port_and_path"},
    {"cnet_socket_connect_path", "bi24_socket_connect_port_and_path"},
    {"cnet_create_connection", "bi25_create_connection"},
    {"cnet_connect", "bi25_create_connection"},
    /* socket: writing */
    {"cnet_socket_write", "bi26_socket_write_family"},
    {"cnet_socket_write_owned", "bi26_socket_write_family"},
    {"cnet_socket_write_string", "bi26_socket_write_family"},
    {"cnet_socket_cork", "bi27_cork_uncork"},
    {"cnet_socket_uncork", "bi27_cork_uncork"},
    {"cnet_socket_end", "bi28_socket_end"},
    /* socket: lifetime */
    {"cnet_socket_destroy", "bi29_socket_lifetime"},
    {"cnet_socket_reset_and_destroy", "bi29_socket_lifetime"},
    {"cnet_socket_free", "bi29_socket_lifetime"},
    {"cnet_socket_retain", "bi29_socket_lifetime"},
    {"cnet_socket_release", "bi29_socket_lifetime"},
    /* socket: reading */
    {"cnet_socket_pause", "bi30_pause_resume"},
    {"cnet_socket_resume", "bi30_pause_resume"},
    {"cnet_socket_is_paused", "bi30_pause_resume"},
    {"cnet_socket_set_encoding", "bi31_set_encoding"},
    {"cnet_socket_set_onread", "bi32_set_onread"},
    {"cnet_socket_set_timeout", "bi33_set_timeout"},
    {"cnet_socket_timeout", "bi33_set_timeout"},
    {"cnet_socket_pipe", "bi34_pipe_unpipe"},
    {"cnet_socket_unpipe", "bi34_pipe_unpipe"},
    /* socket: options and properties */
    {"cnet_socket_set_no_delay", "bi35_socket_options_and_properties"},
    {"cnet_socket_set_keep_alive", "bi35_socket_options_and_properties"},
    {"cnet_socket_ref", "bi35_socket_options_and_properties"},
    {"cnet_socket_unref", "bi35_socket_options_and_properties"},
    {"cnet_socket_connecting", "bi35_socket_options_and_properties"},
    {"cnet_socket_pending", "bi35_socket_options_and_properties"},
    {"cnet_socket_destroyed", "bi35_socket_options_and_properties"},
    {"cnet_socket_ready_state", "bi35_socket_options_and_properties"},
    {"cnet_socket_bytes_read", "bi35_socket_options_and_properties"},
    {"cnet_socket_bytes_written", "bi35_socket_options_and_properties"},
    {"cnet_socket_writable_length", "bi35_socket_options_and_properties"},
    {"cnet_socket_buffer_size", "bi35_socket_options_and_properties"},
    {"cnet_socket_attempted_address", "bi35_socket_options_and_properties"},
    {"cnet_socket_attempt_error", "bi35_socket_options_and_properties"},
    {"cnet_socket_server", "bi35_socket_options_and_properties"},
    {"cnet_socket_set_data", "bi35_socket_options_and_properties"},
    {"cnet_socket_get_data", "bi35_socket_options_and_properties"},
    {"cnet_socket_loop", "bi35_socket_options_and_properties"},
    {"cnet_socket_address", "bi36_socket_addresses"},
    {"cnet_socket_remote_address", "bi36_socket_addresses"},
    /* channels */
    {"cnet_socket_send", "bi37_channel_send_family"},
    {"cnet_socket_send_socket", "bi37_channel_send_family"},
    {"cnet_socket_send_server", "bi37_channel_send_family"},
};

static int data_marker; /* an address to pass as data or ctx */

/* ---- refusal checks ------------------------------------------------------ */

#define PRIME_MESSAGE "Unknown encoding: cnet-bad-input-prime"

/* Leaves a known error in cnet_last_error(), so that a call that fails
 * without recording its own error cannot pass for one that does. */
static void prime(void) {
  cnet_decoder_t d;

  if (cnet_decoder_init(&d, "cnet-bad-input-prime") !=
      CNET_ERR_UNKNOWN_ENCODING)
    FAIL("priming the last error failed");
  if (strcmp(cnet_last_error()->message, PRIME_MESSAGE) != 0)
    FAIL("priming the last error failed: %s", cnet_last_error()->message);
}

/* The error cnet_last_error() holds is r, by Node's name, with message. */
#define ASSERT_LAST_ERROR_(r, name_, msg_)                                     \
  do {                                                                         \
    const cnet_error_t *e_ = cnet_last_error();                                \
    const char *m_ = (msg_);                                                   \
    ASSERT_STR_EQ(name_, cnet_err_name(r));                                    \
    ASSERT_EQ(r, e_->errnum);                                                  \
    ASSERT_STR_EQ(name_, e_->code);                                            \
    ASSERT_STR_EQ(m_, e_->message);                                            \
  } while (0)

/* call (an int function) fails at once with Node's code name and message,
 * recorded as the last error. */
#define REFUSED(call, name_, msg_)                                             \
  do {                                                                         \
    int r_;                                                                    \
    prime();                                                                   \
    r_ = (call);                                                               \
    if (r_ >= 0)                                                               \
      FAIL("%s returned %d, expected %s", #call, r_, name_);                   \
    ASSERT_LAST_ERROR_(r_, name_, msg_);                                       \
  } while (0)

/* The same for a constructor: NULL, and the last error says why. */
#define REFUSED_NULL(call, name_, msg_)                                        \
  do {                                                                         \
    const void *p_;                                                            \
    prime();                                                                   \
    p_ = (call);                                                               \
    if (p_ != NULL)                                                            \
      FAIL("%s returned an object, expected %s", #call, name_);                \
    ASSERT_LAST_ERROR_(cnet_last_error()->errnum, name_, msg_);                \
  } while (0)

/* A call that must succeed and leave the last error alone. */
#define ACCEPTED(call)                                                         \
  do {                                                                         \
    int r_;                                                                    \
    prime();                                                                   \
    r_ = (call);                                                               \
    if (r_ < 0)                                                                \
      FAIL("%s failed: %s (%s)", #call, cnet_err_name(r_),                     \
           cnet_last_error()->message);                                        \
    ASSERT_STR_EQ(PRIME_MESSAGE, cnet_last_error()->message);                  \
  } while (0)

/* A void call or getter that must record nothing. */
#define QUIET(stmt)                                                            \
  do {                                                                         \
    prime();                                                                   \
    stmt;                                                                      \
    ASSERT_STR_EQ(PRIME_MESSAGE, cnet_last_error()->message);                  \
  } while (0)

/* ---- running a loop until something happened ----------------------------- */

static void pulse_fire(uv_timer_t *t) {
  (void)t;
}

static void pulse_closed(uv_handle_t *h) {
  free(h);
}

/* A referenced timer that wakes the loop every few ms, so UV_RUN_ONCE never
 * blocks for long while the loop holds only unreferenced handles. */
static uv_timer_t *pulse_start(uv_loop_t *loop) {
  uv_timer_t *t = malloc(sizeof(*t));

  ASSERT_NOT_NULL(t);
  ASSERT_EQ(0, uv_timer_init(loop, t));
  ASSERT_EQ(0, uv_timer_start(t, pulse_fire, 5, 5));
  return t;
}

static void pulse_stop(uv_timer_t *t) {
  uv_close((uv_handle_t *)t, pulse_closed);
}

#define RUN_UNTIL(loop, cond)                                                  \
  do {                                                                         \
    uv_timer_t *t_ = pulse_start(loop);                                        \
    uint64_t end_ = uv_now(loop) + 3000;                                       \
    while (!(cond)) {                                                          \
      if (uv_now(loop) > end_)                                                 \
        FAIL("timed out waiting for %s", #cond);                               \
      uv_run(loop, UV_RUN_ONCE);                                               \
    }                                                                          \
    pulse_stop(t_);                                                            \
  } while (0)

/* Let the loop turn for ms: whatever was (wrongly) deferred comes out. */
static void run_for(uv_loop_t *loop, unsigned ms) {
  uv_timer_t *t = pulse_start(loop);
  uint64_t end = uv_now(loop) + ms;

  while (uv_now(loop) < end)
    uv_run(loop, UV_RUN_ONCE);
  pulse_stop(t);
}

/* ---- a connected TCP pair ------------------------------------------------ */

typedef struct {
  uv_loop_t *loop;
  cnet_server_t *srv;
  cnet_socket_t *client; /* cnet_socket_new: ours */
  cnet_socket_t *peer;   /* accepted, retained */
  int connected, accepted, peer_ends, errors;
  char got[4096]; /* what the peer received */
  size_t got_len;
} pair_t;

static pair_t P;

static void peer_data(cnet_socket_t *s, const cnet_event_t *ev, void *ctx) {
  (void)s;
  (void)ctx;
  ASSERT(P.got_len + ev->data.len < sizeof(P.got));
  memcpy(P.got + P.got_len, ev->data.base, ev->data.len);
  P.got_len += ev->data.len;
  P.got[P.got_len] = '\0';
}

static void peer_end(cnet_socket_t *s, const cnet_event_t *ev, void *ctx) {
  (void)s;
  (void)ev;
  (void)ctx;
  P.peer_ends++;
}

static void count_error(cnet_socket_t *s, const cnet_event_t *ev, void *ctx) {
  (void)s;
  (void)ctx;
  fprintf(stderr, "unexpected 'error': %s\n", ev->error->message);
  P.errors++;
}

static void on_connection(cnet_server_t *srv, const cnet_event_t *ev,
                          void *ctx) {
  (void)srv;
  (void)ctx;
  P.peer = ev->connection;
  cnet_socket_retain(P.peer);
  ASSERT_EQ(0, cnet_socket_on(P.peer, CNET_EV_DATA, peer_data, NULL));
  ASSERT_EQ(0, cnet_socket_on(P.peer, CNET_EV_END, peer_end, NULL));
  ASSERT_EQ(0, cnet_socket_on(P.peer, CNET_EV_ERROR, count_error, NULL));
  P.accepted++;
}

static void on_connect(cnet_socket_t *s, const cnet_event_t *ev, void *ctx) {
  (void)s;
  (void)ev;
  (void)ctx;
  P.connected++;
}

/* A server on 127.0.0.1, a client connected to it, the accepted peer. */
static void pair_open(void) {
  memset(&P, 0, sizeof(P));
  P.loop = loop_new();
  P.srv = cnet_create_server(P.loop, NULL, on_connection, NULL);
  ASSERT_NOT_NULL(P.srv);
  ASSERT_EQ(0, cnet_server_listen_port(P.srv, 0, "127.0.0.1", 0, NULL, NULL));
  P.client = cnet_socket_new(P.loop, NULL);
  ASSERT_NOT_NULL(P.client);
  ASSERT_EQ(0, cnet_socket_on(P.client, CNET_EV_ERROR, count_error, NULL));
  ASSERT_EQ(0, cnet_socket_connect_port(P.client, server_port(P.srv),
                                        "127.0.0.1", on_connect, NULL));
  RUN_UNTIL(P.loop, P.connected == 1 && P.accepted == 1);
}

/* The client writes text; the peer must receive exactly what was written
 * so far (want: everything the peer should have by now). */
static void pair_expect(const char *want) {
  RUN_UNTIL(P.loop, P.got_len >= strlen(want));
  ASSERT_STR_EQ(want, P.got);
}

static void pair_close(void) {
  ASSERT_EQ(0, P.errors);
  cnet_socket_free(P.client);
  cnet_socket_destroy(P.peer, NULL);
  cnet_socket_release(P.peer);
  cnet_server_free(P.srv);
  loop_finish(P.loop);
}

/* ---- listeners used as "must never run" ---------------------------------- */

static int never_calls;

static void never_socket(cnet_socket_t *s, const cnet_event_t *ev, void *ctx) {
  (void)s;
  (void)ctx;
  fprintf(stderr, "unexpected socket event %s\n", cnet_event_name(ev->type));
  never_calls++;
}

static void never_server(cnet_server_t *srv, const cnet_event_t *ev,
                         void *ctx) {
  (void)srv;
  (void)ctx;
  fprintf(stderr, "unexpected server event %s\n", cnet_event_name(ev->type));
  never_calls++;
}

static void never_write_cb(cnet_socket_t *s, const cnet_error_t *err,
                           void *ctx) {
  (void)s;
  (void)err;
  (void)ctx;
  never_calls++;
}

static void never_release(void *data, size_t len, void *ctx) {
  (void)data;
  (void)len;
  (void)ctx;
  never_calls++;
}

/* A path of n bytes (not counting the NUL) under /tmp. */
static const char *long_path(size_t n) {
  static char p[4096 + 8];

  ASSERT(n < sizeof(p));
  memset(p, 'a', n);
  memcpy(p, "/tmp/", 5);
  p[n] = '\0';
  return p;
}

/* ======================================================================== */
/* bi00: every public function has a case here                              */

static char *slurp(const char *path) {
  FILE *f = fopen(path, "rb");
  char *buf;
  long n;

  if (f == NULL)
    return NULL;
  ASSERT_EQ(0, fseek(f, 0, SEEK_END));
  n = ftell(f);
  ASSERT_GE(n, 0);
  rewind(f);
  buf = malloc((size_t)n + 1);
  ASSERT_NOT_NULL(buf);
  ASSERT_EQ((size_t)n, fread(buf, 1, (size_t)n, f));
  buf[n] = '\0';
  fclose(f);
  return buf;
}

/* CNET_SOURCE_DIR/rel, or rel beside this file's directory's parent. */
static char *slurp_source(const char *rel) {
  const char *dir = getenv("CNET_SOURCE_DIR");
  char path[4096];
  char *text;

  if (dir != NULL && dir[0] != '\0') {
    snprintf(path, sizeof(path), "%s/%s", dir, rel);
    if ((text = slurp(path)) != NULL)
      return text;
  }
  snprintf(path, sizeof(path), "%s", __FILE__); /* .../test/test-....c */
  for (int i = 0; i < 2; i++) {
    char *slash = strrchr(path, '/');
    if (slash == NULL)
      FAIL("cannot find %s: set CNET_SOURCE_DIR", rel);
    *slash = '\0';
  }
  snprintf(path + strlen(path), sizeof(path) - strlen(path), "/%s", rel);
  text = slurp(path);
  if (text == NULL)
    FAIL("cannot read %s: set CNET_SOURCE_DIR", path);
  return text;
}

static bool ident_char(char c) {
  return c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
         (c >= '0' && c <= '9');
}

/* A call "name(" (name not part of a longer identifier) in [from, to). */
static bool has_call(const char *from, const char *to, const char *name) {
  size_t n = strlen(name);

  for (const char *p = from; (p = strstr(p, name)) != NULL && p < to; p++)
    if ((p == from || !ident_char(p[-1])) && p[n] == '(')
      return true;
  return false;
}

/* The public functions, in header order: each line that starts with
 * CNET_EXTERN names the first identifier followed by '('. */
static size_t header_functions(char *h, const char **names, size_t max) {
  size_t n = 0;

  for (char *line = h; line != NULL && *line != '\0';) {
    char *next = strchr(line, '\n');
    if (strncmp(line, "CNET_EXTERN ", 12) == 0) {
      char *p = line + 12;
      for (;;) {
        while (*p != '\0' && !ident_char(*p))
          p++;
        ASSERT(*p != '\0');
        char *id = p;
        while (ident_char(*p))
          p++;
        char *q = p;
        while (*q == ' ' || *q == '\n')
          q++;
        if (*q == '(') {
          ASSERT(n < max);
          *p = '\0';
          names[n++] = id;
          next = strchr(p + 1, '\n');
          break;
        }
      }
    }
    line = next != NULL ? next + 1 : NULL;
  }
  return n;
}

static bool case_registered(const char *name) {
  for (int i = 0; i < harness_ncases; i++)
    if (strcmp(harness_cases[i].name, name) == 0)
      return true;
  return false;
}

TEST_CASE(bi00_every_public_function_has_a_case) {
  char *header = slurp_source("include/cnet.h");
  char *self = slurp_source("test/test-bad-input.c");
  const char *names[512];
  size_t n = header_functions(header, names, ARRAY_LEN(names));
  int missing = 0;

  ASSERT_GT(n, 100); /* the parse found the API */
  for (size_t i = 0; i < n; i++) {
    const coverage_t *c = NULL;
    char marker[128];
    const char *body, *end;

    for (size_t k = 0; k < ARRAY_LEN(coverage); k++)
      if (strcmp(coverage[k].fn, names[i]) == 0)
        c = &coverage[k];
    if (c == NULL) {
      fprintf(stderr, "%s: in cnet.h, not in the coverage table of %s\n",
              names[i], __FILE__);
      missing++;
      continue;
    }
    if (!case_registered(c->tc)) {
      fprintf(stderr, "%s: its case %s does not exist\n", c->fn, c->tc);
      missing++;
      continue;
    }
    snprintf(marker, sizeof(marker), "TEST_CASE(%s)", c->tc);
    body = strstr(self, marker);
    ASSERT_NOT_NULL(body);
    end = strstr(body + 1, "\nTEST_CASE(");
    if (end == NULL)
      end = body + strlen(body);
    if (!has_call(body, end, c->fn)) {
      fprintf(stderr, "%s: not called in %s\n", c->fn, c->tc);
      missing++;
    }
  }
  /* and nothing in the table that the header no longer has */
  for (size_t k = 0; k < ARRAY_LEN(coverage); k++) {
    bool found = false;
    for (size_t i = 0; i < n && !found; i++)
      found = strcmp(coverage[k].fn, names[i]) == 0;
    if (!found) {
      fprintf(stderr, "%s: in the table, not in cnet.h\n", coverage[k].fn);
      missing++;
    }
  }
  ASSERT_EQ(0, missing);
  ASSERT_EQ(n, ARRAY_LEN(coverage));
  free(header);
  free(self);
}

/* ======================================================================== */
/* Errors, events, names                                                     */

static int unhandled_calls;

static void count_unhandled(const char *what, const cnet_error_t *err,
                            void *ctx) {
  (void)what;
  (void)err;
  ASSERT_NULL(ctx);
  unhandled_calls++;
}

TEST_CASE(bi01_errors) {
  static const int codes[] = {0,     1,     22,    INT_MAX, INT_MIN,      -5000,
                              -6000, -7000, -4096, -2999,   CNET_ERR_END_};
  const cnet_error_t *e;

  /* Codes nobody defined: a name and a text, never NULL, never a crash. */
  for (size_t i = 0; i < ARRAY_LEN(codes); i++) {
    ASSERT_STR_EQ("UNKNOWN", cnet_err_name(codes[i]));
    ASSERT_STR_EQ("unknown error", cnet_strerror(codes[i]));
  }
  /* The last error is never NULL and always has a code and a message. */
  e = cnet_last_error();
  ASSERT_NOT_NULL(e);
  ASSERT_NOT_NULL(e->code);
  /* NULL restores the default handler and drops the ctx given with it. */
  cnet_set_unhandled_error_handler(NULL, &data_marker);
  cnet_set_unhandled_error_handler(count_unhandled, NULL);
  {
    uv_loop_t *loop = loop_new();
    cnet_connect_options_t o = {.port = closed_port(), .host = "127.0.0.1"};
    ASSERT_NOT_NULL(cnet_create_connection(loop, &o, NULL, NULL));
    run_bounded(loop, 3000);
    ASSERT_EQ(1, unhandled_calls);
    loop_finish(loop);
  }
  cnet_set_unhandled_error_handler(NULL, &data_marker);
}

TEST_CASE(bi02_event_and_family_names) {
  static const int bad[] = {-1,  CNET_EV_COUNT_, CNET_EV_COUNT_ + 1,
                            255, INT_MAX,        INT_MIN};

  for (size_t i = 0; i < ARRAY_LEN(bad); i++)
    ASSERT_NULL(cnet_event_name((cnet_event_type_t)bad[i]));
  ASSERT_STR_EQ("data", cnet_event_name(CNET_EV_DATA));
  /* families: only 4 and 6 have a name (IPC is NULL, as documented) */
  ASSERT_NULL(cnet_family_name(0));
  ASSERT_NULL(cnet_family_name(5));
  ASSERT_NULL(cnet_family_name(-4));
  ASSERT_NULL(cnet_family_name(AF_INET6));
  ASSERT_STR_EQ("IPv4", cnet_family_name(4));
  ASSERT_STR_EQ("IPv6", cnet_family_name(6));
}

/* ======================================================================== */
/* Emitters                                                                  */

TEST_CASE(bi03_socket_listeners) {
  uv_loop_t *loop = loop_new();
  cnet_socket_t *s = cnet_socket_new(loop, NULL);
  static const int bad_types[] = {-1, CNET_EV_COUNT_, 1000, INT_MIN};

  /* Node: on('data', null) throws ERR_INVALID_ARG_TYPE; cnet's header
   * gives UV_EINVAL for a NULL object or fn and an unknown type. */
  REFUSED(cnet_socket_on(NULL, CNET_EV_DATA, never_socket, NULL), "EINVAL",
          "invalid argument");
  REFUSED(cnet_socket_on(s, CNET_EV_DATA, NULL, NULL), "EINVAL",
          "invalid argument");
  REFUSED(cnet_socket_once(NULL, CNET_EV_END, never_socket, NULL), "EINVAL",
          "invalid argument");
  REFUSED(cnet_socket_once(s, CNET_EV_END, NULL, NULL), "EINVAL",
          "invalid argument");
  REFUSED(cnet_socket_prepend_listener(NULL, CNET_EV_END, never_socket, NULL),
          "EINVAL", "invalid argument");
  REFUSED(cnet_socket_prepend_listener(s, CNET_EV_END, NULL, NULL), "EINVAL",
          "invalid argument");
  for (size_t i = 0; i < ARRAY_LEN(bad_types); i++) {
    cnet_event_type_t t = (cnet_event_type_t)bad_types[i];
    REFUSED(cnet_socket_on(s, t, never_socket, NULL), "EINVAL",
            "invalid argument");
    REFUSED(cnet_socket_once(s, t, never_socket, NULL), "EINVAL",
            "invalid argument");
    REFUSED(cnet_socket_prepend_listener(s, t, never_socket, NULL), "EINVAL",
            "invalid argument");
    QUIET(ASSERT_EQ(0, cnet_socket_listener_count(s, t)));
    /* off: 0 whether or not anything matched, an unknown type included */
    ACCEPTED(cnet_socket_off(s, t, never_socket, NULL));
  }
  REFUSED(cnet_socket_off(NULL, CNET_EV_DATA, never_socket, NULL), "EINVAL",
          "invalid argument");
  ACCEPTED(cnet_socket_off(s, CNET_EV_DATA, NULL, NULL));
  QUIET(ASSERT_EQ(0, cnet_socket_listener_count(NULL, CNET_EV_DATA)));
  /* Nothing was added; a refused 'data' listener did not start the flow. */
  for (int t = 0; t < CNET_EV_COUNT_; t++)
    ASSERT_EQ(0, cnet_socket_listener_count(s, (cnet_event_type_t)t));
  ASSERT(!cnet_socket_is_paused(s));
  /* Still usable: a good listener is added and removed. */
  ACCEPTED(cnet_socket_on(s, CNET_EV_CLOSE, never_socket, NULL));
  ASSERT_EQ(1, cnet_socket_listener_count(s, CNET_EV_CLOSE));
  ACCEPTED(cnet_socket_off(s, CNET_EV_CLOSE, never_socket, NULL));
  ASSERT_EQ(0, cnet_socket_listener_count(s, CNET_EV_CLOSE));
  cnet_socket_free(s);
  loop_finish(loop);
  ASSERT_EQ(0, never_calls);
}

TEST_CASE(bi04_server_listeners) {
  uv_loop_t *loop = loop_new();
  cnet_server_t *srv = cnet_create_server(loop, NULL, NULL, NULL);
  static const int bad_types[] = {-1, CNET_EV_COUNT_, 1000, INT_MIN};

  REFUSED(cnet_server_on(NULL, CNET_EV_CLOSE, never_server, NULL), "EINVAL",
          "invalid argument");
  REFUSED(cnet_server_on(srv, CNET_EV_CLOSE, NULL, NULL), "EINVAL",
          "invalid argument");
  REFUSED(cnet_server_once(NULL, CNET_EV_CLOSE, never_server, NULL), "EINVAL",
          "invalid argument");
  REFUSED(cnet_server_once(srv, CNET_EV_CLOSE, NULL, NULL), "EINVAL",
          "invalid argument");
  REFUSED(cnet_server_prepend_listener(NULL, CNET_EV_CLOSE, never_server, NULL),
          "EINVAL", "invalid argument");
  REFUSED(cnet_server_prepend_listener(srv, CNET_EV_CLOSE, NULL, NULL),
          "EINVAL", "invalid argument");
  for (size_t i = 0; i < ARRAY_LEN(bad_types); i++) {
    cnet_event_type_t t = (cnet_event_type_t)bad_types[i];
    REFUSED(cnet_server_on(srv, t, never_server, NULL), "EINVAL",
            "invalid argument");
    REFUSED(cnet_server_once(srv, t, never_server, NULL), "EINVAL",
            "invalid argument");
    REFUSED(cnet_server_prepend_listener(srv, t, never_server, NULL), "EINVAL",
            "invalid argument");
    QUIET(ASSERT_EQ(0, cnet_server_listener_count(srv, t)));
    ACCEPTED(cnet_server_off(srv, t, never_server, NULL));
  }
  REFUSED(cnet_server_off(NULL, CNET_EV_CLOSE, never_server, NULL), "EINVAL",
          "invalid argument");
  ACCEPTED(cnet_server_off(srv, CNET_EV_CLOSE, NULL, NULL));
  QUIET(ASSERT_EQ(0, cnet_server_listener_count(NULL, CNET_EV_CLOSE)));
  for (int t = 0; t < CNET_EV_COUNT_; t++)
    ASSERT_EQ(0, cnet_server_listener_count(srv, (cnet_event_type_t)t));
  ACCEPTED(cnet_server_on(srv, CNET_EV_LISTENING, never_server, NULL));
  ASSERT_EQ(1, cnet_server_listener_count(srv, CNET_EV_LISTENING));
  ACCEPTED(cnet_server_off(srv, CNET_EV_LISTENING, never_server, NULL));
  cnet_server_free(srv);
  loop_finish(loop);
  ASSERT_EQ(0, never_calls);
}

/* ======================================================================== */
/* Loop and allocator                                                        */

static int alloc_calls;

static void *counting_malloc(size_t n) {
  alloc_calls++;
  return malloc(n);
}

TEST_CASE(bi05_run_and_allocator) {
  uv_loop_t *loop;
  cnet_socket_t *s;

  /* cnet_run takes nothing: on an empty default loop it returns at once. */
  ASSERT_EQ(0, cnet_run());
  ASSERT_EQ(0, uv_loop_close(uv_default_loop()));
  /* Any NULL: ERR_MISSING_ARGS, and the allocator in use stays. */
  REFUSED(cnet_replace_allocator(NULL, realloc, calloc, free),
          "ERR_MISSING_ARGS",
          "The allocator functions argument must be specified");
  REFUSED(cnet_replace_allocator(counting_malloc, NULL, calloc, free),
          "ERR_MISSING_ARGS",
          "The allocator functions argument must be specified");
  REFUSED(cnet_replace_allocator(counting_malloc, realloc, NULL, free),
          "ERR_MISSING_ARGS",
          "The allocator functions argument must be specified");
  REFUSED(cnet_replace_allocator(counting_malloc, realloc, calloc, NULL),
          "ERR_MISSING_ARGS",
          "The allocator functions argument must be specified");
  REFUSED(cnet_replace_allocator(NULL, NULL, NULL, NULL), "ERR_MISSING_ARGS",
          "The allocator functions argument must be specified");
  loop = loop_new();
  s = cnet_socket_new(loop, NULL);
  ASSERT_NOT_NULL(s);
  ASSERT_EQ(0, cnet_socket_set_encoding(s, "hex")); /* allocates */
  cnet_socket_free(s);
  loop_finish(loop);
  ASSERT_EQ(0, alloc_calls); /* counting_malloc was never installed */
}

/* ======================================================================== */
/* IP utilities                                                              */

TEST_CASE(bi06_is_ip) {
  static const char with_nul[] = "127.0.0.1\0.5";
  static const char v6_nul[] = "::1\0";

  QUIET(ASSERT_EQ(0, cnet_is_ip(NULL)));
  QUIET(ASSERT(!cnet_is_ipv4(NULL)));
  QUIET(ASSERT(!cnet_is_ipv6(NULL)));
  QUIET(ASSERT_EQ(0, cnet_is_ip_n(NULL, 0)));
  QUIET(ASSERT_EQ(0, cnet_is_ip_n(NULL, 9)));
  ASSERT_EQ(0, cnet_is_ip(""));
  ASSERT(!cnet_is_ipv4(""));
  ASSERT(!cnet_is_ipv6(""));
  /* zero length, an embedded NUL, a cut address */
  ASSERT_EQ(0, cnet_is_ip_n("127.0.0.1", 0));
  ASSERT_EQ(0, cnet_is_ip_n(with_nul, sizeof(with_nul) - 1));
  ASSERT_EQ(0, cnet_is_ip_n(v6_nul, sizeof(v6_nul) - 1));
  ASSERT_EQ(4, cnet_is_ip_n(with_nul, 9));
  ASSERT_EQ(0, cnet_is_ip_n("127.0.0.1", 7)); /* "127.0.0" */
  ASSERT_EQ(6, cnet_is_ip_n(v6_nul, 3));
  /* the NUL-terminated forms stop at the NUL */
  ASSERT_EQ(4, cnet_is_ip(with_nul));
  ASSERT(cnet_is_ipv4(with_nul));
  ASSERT(cnet_is_ipv6(v6_nul));
}

TEST_CASE(bi07_socket_address_init) {
  cnet_socket_address_t sa, before;
  cnet_socket_address_options_t o;

  memset(&sa, 0x5a, sizeof(sa));
  before = sa;
  REFUSED(cnet_socket_address_init(NULL, NULL), "EINVAL", "invalid argument");
  o = (cnet_socket_address_options_t){.family = 5};
  REFUSED(cnet_socket_address_init(&sa, &o), "ERR_INVALID_ARG_VALUE",
          "The property 'options.family' is invalid. Received 5");
  o = (cnet_socket_address_options_t){.family = -4};
  REFUSED(cnet_socket_address_init(&sa, &o), "ERR_INVALID_ARG_VALUE",
          "The property 'options.family' is invalid. Received -4");
  o = (cnet_socket_address_options_t){.port = 65536};
  REFUSED(cnet_socket_address_init(&sa, &o), "ERR_SOCKET_BAD_PORT",
          "options.port should be >= 0 and < 65536. Received type number "
          "(65536).");
  o = (cnet_socket_address_options_t){.port = -1};
  REFUSED(cnet_socket_address_init(&sa, &o), "ERR_SOCKET_BAD_PORT",
          "options.port should be >= 0 and < 65536. Received type number "
          "(-1).");
  o = (cnet_socket_address_options_t){.port = INT_MIN};
  REFUSED(cnet_socket_address_init(&sa, &o), "ERR_SOCKET_BAD_PORT",
          "options.port should be >= 0 and < 65536. Received type number "
          "(-2147483648).");
  o = (cnet_socket_address_options_t){.address = "bogus"};
  REFUSED(cnet_socket_address_init(&sa, &o), "ERR_INVALID_ADDRESS",
          "Invalid socket address");
  o = (cnet_socket_address_options_t){.address = "", .family = 6};
  REFUSED(cnet_socket_address_init(&sa, &o), "ERR_INVALID_ADDRESS",
          "Invalid socket address");
  /* an address of the other family */
  o = (cnet_socket_address_options_t){.address = "::1", .family = 4};
  REFUSED(cnet_socket_address_init(&sa, &o), "ERR_INVALID_ADDRESS",
          "Invalid socket address");
  o = (cnet_socket_address_options_t){
      .address = "::1", .family = 6, .flowlabel = 0x100000};
  REFUSED(cnet_socket_address_init(&sa, &o), "ERR_OUT_OF_RANGE",
          "The value of \"options.flowlabel\" is out of range. It must be "
          ">= 0 && <= 1048575. Received 1048576");
  /* nothing was written on failure */
  ASSERT_MEM_EQ(&before, &sa, sizeof(sa));
  /* and it still works */
  o = (cnet_socket_address_options_t){
      .address = "::1", .family = 6, .port = 65535};
  ACCEPTED(cnet_socket_address_init(&sa, &o));
  ASSERT_STR_EQ("::1", sa.address);
  ASSERT_EQ(65535, sa.port);
}

TEST_CASE(bi08_socket_address_parse_format) {
  static const char *const bad[] = {"",           " ",         "1.2.3.4:65536",
                                    "1.2.3.4:-1", "[::1",      "::1]:80",
                                    "bogus",      "1.2.3.4:x", "[::1]:99999"};
  cnet_socket_address_t sa, before;
  char buf[64];

  memset(&sa, 0x5a, sizeof(sa));
  before = sa;
  REFUSED(cnet_socket_address_parse(NULL, "1.2.3.4"), "EINVAL",
          "invalid argument");
  REFUSED(cnet_socket_address_parse(&sa, NULL), "EINVAL", "invalid argument");
  for (size_t i = 0; i < ARRAY_LEN(bad); i++)
    REFUSED(cnet_socket_address_parse(&sa, bad[i]), "ERR_INVALID_ADDRESS",
            "Invalid socket address");
  ASSERT_MEM_EQ(&before, &sa, sizeof(sa));

  /* format: NULL address, NULL or small buffers */
  memset(buf, 'x', sizeof(buf));
  QUIET(ASSERT_EQ(0, cnet_socket_address_format(NULL, buf, sizeof(buf))));
  ASSERT_STR_EQ("", buf);
  QUIET(ASSERT_EQ(0, cnet_socket_address_format(NULL, NULL, 10)));
  ASSERT_EQ(0, cnet_socket_address_parse(&sa, "[::1]:123"));
  ASSERT_EQ(9, cnet_socket_address_format(&sa, NULL, 100)); /* no write */
  memset(buf, 'x', sizeof(buf));
  ASSERT_EQ(9, cnet_socket_address_format(&sa, buf, 0));
  ASSERT_EQ('x', buf[0]);
  ASSERT_EQ(9, cnet_socket_address_format(&sa, buf, 4));
  ASSERT_STR_EQ("[::", buf);
  ASSERT_EQ(9, cnet_socket_address_format(&sa, buf, sizeof(buf)));
  ASSERT_STR_EQ("[::1]:123", buf);
}

TEST_CASE(bi09_block_list_add) {
  cnet_block_list_t *bl = cnet_block_list_new();
  char rule[64];

  ASSERT_NOT_NULL(bl);
  QUIET(cnet_block_list_free(NULL));
  /* NULL list or text */
  REFUSED(cnet_block_list_add_address(NULL, "1.1.1.1", 4), "EINVAL",
          "invalid argument");
  REFUSED(cnet_block_list_add_address(bl, NULL, 4), "EINVAL",
          "invalid argument");
  REFUSED(cnet_block_list_add_range(NULL, "1.1.1.1", "1.1.1.2", 4), "EINVAL",
          "invalid argument");
  REFUSED(cnet_block_list_add_range(bl, NULL, "1.1.1.2", 4), "EINVAL",
          "invalid argument");
  REFUSED(cnet_block_list_add_range(bl, "1.1.1.1", NULL, 4), "EINVAL",
          "invalid argument");
  REFUSED(cnet_block_list_add_subnet(NULL, "1.1.1.0", 24, 4), "EINVAL",
          "invalid argument");
  REFUSED(cnet_block_list_add_subnet(bl, NULL, 24, 4), "EINVAL",
          "invalid argument");
  REFUSED(cnet_block_list_add_rule(NULL, "Address: IPv4 1.1.1.1"), "EINVAL",
          "invalid argument");
  REFUSED(cnet_block_list_add_rule(bl, NULL), "EINVAL", "invalid argument");
  /* bad families */
  REFUSED(cnet_block_list_add_address(bl, "1.1.1.1", 5),
          "ERR_INVALID_ARG_VALUE",
          "The property 'options.family' is invalid. Received 5");
  REFUSED(cnet_block_list_add_address(bl, "1.1.1.1", AF_INET6),
          "ERR_INVALID_ARG_VALUE",
          "The property 'options.family' is invalid. Received 10");
  REFUSED(cnet_block_list_add_range(bl, "1.1.1.1", "1.1.1.2", -1),
          "ERR_INVALID_ARG_VALUE",
          "The property 'options.family' is invalid. Received -1");
  REFUSED(cnet_block_list_add_subnet(bl, "1.1.1.0", 24, INT_MAX),
          "ERR_INVALID_ARG_VALUE",
          "The property 'options.family' is invalid. Received 2147483647");
  /* bad addresses, empty text, a family mismatch */
  REFUSED(cnet_block_list_add_address(bl, "", 4), "ERR_INVALID_ADDRESS",
          "Invalid socket address");
  REFUSED(cnet_block_list_add_address(bl, "::1", 4), "ERR_INVALID_ADDRESS",
          "Invalid socket address");
  REFUSED(cnet_block_list_add_range(bl, "1.1.1.1", "", 4),
          "ERR_INVALID_ADDRESS", "Invalid socket address");
  REFUSED(cnet_block_list_add_range(bl, "1.1.1.2", "1.1.1.1", 4),
          "ERR_INVALID_ARG_VALUE",
          "The argument 'start' must come before end. Received "
          "SocketAddress { address: '1.1.1.2', port: 0, family: 'ipv4', "
          "flowlabel: 0 }");
  /* prefixes out of range */
  REFUSED(cnet_block_list_add_subnet(bl, "1.1.1.0", -1, 4), "ERR_OUT_OF_RANGE",
          "The value of \"prefix\" is out of range. It must be >= 0 && <= 32. "
          "Received -1");
  REFUSED(cnet_block_list_add_subnet(bl, "1.1.1.0", 33, 4), "ERR_OUT_OF_RANGE",
          "The value of \"prefix\" is out of range. It must be >= 0 && <= 32. "
          "Received 33");
  REFUSED(cnet_block_list_add_subnet(bl, "::", INT_MAX, 6), "ERR_OUT_OF_RANGE",
          "The value of \"prefix\" is out of range. It must be >= 0 && <= 128. "
          "Received 2147483647");
  /* rules: empty, unknown, cut */
  REFUSED(cnet_block_list_add_rule(bl, ""), "ERR_INVALID_ARG_VALUE",
          "The argument 'rule' is invalid. Received ''");
  REFUSED(cnet_block_list_add_rule(bl, "Address: IPv5 1.1.1.1"),
          "ERR_INVALID_ARG_VALUE",
          "The argument 'rule' is invalid. Received 'Address: IPv5 1.1.1.1'");
  REFUSED(cnet_block_list_add_rule(bl, "Subnet: IPv4 1.1.1.0/"),
          "ERR_INVALID_ARG_VALUE",
          "The argument 'rule' is invalid. Received 'Subnet: IPv4 1.1.1.0/'");
  /* the list is unchanged, and still takes good rules */
  ASSERT_EQ(0, cnet_block_list_rule_count(bl));
  ACCEPTED(cnet_block_list_add_subnet(bl, "10.0.0.0", 8, 0));
  ASSERT_EQ(1, cnet_block_list_rule_count(bl));
  ASSERT_GT(cnet_block_list_rule(bl, 0, rule, sizeof(rule)), 0);
  ASSERT_STR_EQ("Subnet: IPv4 10.0.0.0/8", rule);
  cnet_block_list_free(bl);
}

TEST_CASE(bi10_block_list_read) {
  cnet_block_list_t *bl = cnet_block_list_new();
  struct sockaddr_un un = {.sun_family = AF_UNIX};
  struct sockaddr_in in4 = {.sin_family = AF_INET};
  struct sockaddr sa_unspec = {.sa_family = AF_UNSPEC};
  char buf[64];

  ASSERT_EQ(0, cnet_block_list_add_address(bl, "10.1.2.3", 4));
  in4.sin_addr.s_addr = htonl(0x0a010203);
  /* check: NULLs, junk text and bad families are false, not errors */
  QUIET(ASSERT(!cnet_block_list_check(NULL, "10.1.2.3", 4)));
  QUIET(ASSERT(!cnet_block_list_check(bl, NULL, 4)));
  QUIET(ASSERT(!cnet_block_list_check(bl, "", 4)));
  QUIET(ASSERT(!cnet_block_list_check(bl, "10.1.2.3", 5)));
  QUIET(ASSERT(!cnet_block_list_check(bl, "10.1.2.3", -1)));
  QUIET(ASSERT(!cnet_block_list_check(bl, "10.1.2.3", 6)));
  QUIET(ASSERT(!cnet_block_list_check_sockaddr(NULL, (struct sockaddr *)&in4)));
  QUIET(ASSERT(!cnet_block_list_check_sockaddr(bl, NULL)));
  QUIET(ASSERT(!cnet_block_list_check_sockaddr(bl, (struct sockaddr *)&un)));
  QUIET(ASSERT(!cnet_block_list_check_sockaddr(bl, &sa_unspec)));
  ASSERT(cnet_block_list_check(bl, "10.1.2.3", 4));
  ASSERT(cnet_block_list_check_sockaddr(bl, (struct sockaddr *)&in4));
  /* rules: NULL list, an index past the end, NULL or small buffers */
  QUIET(ASSERT_EQ(0, cnet_block_list_rule_count(NULL)));
  memset(buf, 'x', sizeof(buf));
  QUIET(ASSERT_EQ(0, cnet_block_list_rule(NULL, 0, buf, sizeof(buf))));
  ASSERT_STR_EQ("", buf);
  memset(buf, 'x', sizeof(buf));
  QUIET(ASSERT_EQ(0, cnet_block_list_rule(bl, 1, buf, sizeof(buf))));
  ASSERT_STR_EQ("", buf);
  QUIET(ASSERT_EQ(0, cnet_block_list_rule(bl, SIZE_MAX, buf, sizeof(buf))));
  QUIET(ASSERT_EQ(22, cnet_block_list_rule(bl, 0, NULL, 64)));
  memset(buf, 'x', sizeof(buf));
  ASSERT_EQ(22, cnet_block_list_rule(bl, 0, buf, 0));
  ASSERT_EQ('x', buf[0]);
  ASSERT_EQ(22, cnet_block_list_rule(bl, 0, buf, 8));
  ASSERT_STR_EQ("Address", buf);
  ASSERT_EQ(22, cnet_block_list_rule(bl, 0, buf, sizeof(buf)));
  ASSERT_STR_EQ("Address: IPv4 10.1.2.3", buf);
  ASSERT_EQ(1, cnet_block_list_rule_count(bl));
  cnet_block_list_free(bl);
}

/* ======================================================================== */
/* Encodings                                                                 */

TEST_CASE(bi11_encoding_names) {
  static const int bad[] = {-1, CNET_ENC_UNKNOWN, CNET_ENC_HEX + 1, 1000,
                            INT_MIN};

  QUIET(ASSERT_EQ(CNET_ENC_UNKNOWN, cnet_encoding_from_name("bogus")));
  ASSERT_EQ(CNET_ENC_UNKNOWN, cnet_encoding_from_name("utf-9"));
  ASSERT_EQ(CNET_ENC_UNKNOWN, cnet_encoding_from_name("utf8 "));
  ASSERT_EQ(CNET_ENC_UNKNOWN, cnet_encoding_from_name("hexx"));
  /* NULL and "" are Node's default */
  ASSERT_EQ(CNET_ENC_UTF8, cnet_encoding_from_name(NULL));
  ASSERT_EQ(CNET_ENC_UTF8, cnet_encoding_from_name(""));
  for (size_t i = 0; i < ARRAY_LEN(bad); i++)
    QUIET(ASSERT_NULL(cnet_encoding_name((cnet_encoding_t)bad[i])));
  ASSERT_STR_EQ("hex", cnet_encoding_name(CNET_ENC_HEX));
}

TEST_CASE(bi12_decoder) {
  cnet_decoder_t d, before;
  char out[64];

  REFUSED(cnet_decoder_init(NULL, "utf8"), "EINVAL", "invalid argument");
  REFUSED(cnet_decoder_init(&d, "bogus"), "ERR_UNKNOWN_ENCODING",
          "Unknown encoding: bogus");
  REFUSED(cnet_decoder_init(&d, "utf-16"), "ERR_UNKNOWN_ENCODING",
          "Unknown encoding: utf-16");
  ACCEPTED(cnet_decoder_init(&d, NULL)); /* utf8, Node's default */
  ACCEPTED(cnet_decoder_init(&d, ""));

  /* NULL decoder, input or output: nothing written, 0, nothing kept */
  QUIET(ASSERT_EQ(0, cnet_decoder_max_length(NULL, 10)));
  QUIET(ASSERT_EQ(0, cnet_decoder_write(NULL, "abc", 3, out)));
  QUIET(ASSERT_EQ(0, cnet_decoder_end(NULL, out)));
  ASSERT_EQ(0, cnet_decoder_init(&d, "utf8"));
  ASSERT_EQ(0, cnet_decoder_write(&d, "\xe2\x82", 2, out)); /* kept */
  before = d;
  QUIET(ASSERT_EQ(0, cnet_decoder_write(&d, NULL, 3, out)));
  QUIET(ASSERT_EQ(0, cnet_decoder_write(&d, "\xac", 1, NULL)));
  QUIET(ASSERT_EQ(0, cnet_decoder_end(&d, NULL)));
  ASSERT_MEM_EQ(&before, &d, sizeof(d));
  /* zero length is fine, and the decoder carries on where it was */
  ASSERT_EQ(0, cnet_decoder_write(&d, NULL, 0, out));
  ASSERT_EQ(0, cnet_decoder_write(&d, "", 0, NULL));
  ASSERT_EQ(3, cnet_decoder_write(&d, "\xac", 1, out));
  ASSERT_MEM_EQ("\xe2\x82\xac", out, 3); /* the euro sign, whole */
  /* a huge length does not overflow the room computation */
  ASSERT_EQ(SIZE_MAX, cnet_decoder_max_length(&d, SIZE_MAX));
  ASSERT_EQ(0, cnet_decoder_end(&d, out));
  /* an encoding value nobody defined reads as utf8, as zeroed memory does */
  memset(&d, 0, sizeof(d));
  d.encoding = (cnet_encoding_t)99;
  ASSERT_EQ(2, cnet_decoder_write(&d, "ok", 2, out));
}

TEST_CASE(bi13_encode) {
  char out[64];

  /* an encoding value nobody defined encodes as utf8 */
  QUIET(ASSERT_EQ(12, cnet_encode_max_length((cnet_encoding_t)-1, 4)));
  ASSERT_EQ(SIZE_MAX, cnet_encode_max_length(CNET_ENC_UTF16LE, SIZE_MAX));
  ASSERT_EQ(2, cnet_encode((cnet_encoding_t)99, "ok", 2, out));
  /* NULL text or output: nothing written, 0 */
  memset(out, 'x', sizeof(out));
  QUIET(ASSERT_EQ(0, cnet_encode(CNET_ENC_HEX, NULL, 4, out)));
  QUIET(ASSERT_EQ(0, cnet_encode(CNET_ENC_UTF8, "abcd", 4, NULL)));
  QUIET(ASSERT_EQ(0, cnet_encode(CNET_ENC_UTF16LE, NULL, 0, NULL)));
  ASSERT_EQ('x', out[0]);
  /* an embedded NUL is a character like any other when a length is given */
  ASSERT_EQ(3, cnet_encode(CNET_ENC_UTF8, "a\0b", 3, out));
  ASSERT_MEM_EQ("a\0b", out, 3);
  /* hex that is not hex: Node stops at the first bad pair */
  ASSERT_EQ(1, cnet_encode(CNET_ENC_HEX, "41zz42", 6, out));
  ASSERT_EQ('A', out[0]);
}

/* ======================================================================== */
/* Server                                                                    */

TEST_CASE(bi14_create_server) {
  uv_loop_t *loop = loop_new();
  cnet_server_options_t huge = {.high_water_mark = SIZE_MAX,
                                .max_connections = UINT_MAX,
                                .keep_alive_initial_delay = UINT_MAX};
  cnet_server_t *srv;

  /* Nothing in the options can be wrong: all values are defined. NULL
   * loop is the default loop, NULL options Node's defaults, NULL listener
   * none. */
  srv = cnet_create_server(NULL, NULL, NULL, NULL);
  ASSERT_NOT_NULL(srv);
  ASSERT(cnet_server_loop(srv) == uv_default_loop());
  ASSERT_EQ(0, cnet_server_listener_count(srv, CNET_EV_CONNECTION));
  cnet_server_free(srv);
  ASSERT_EQ(0, uv_run(uv_default_loop(), UV_RUN_DEFAULT));
  ASSERT_EQ(0, uv_loop_close(uv_default_loop()));
  QUIET(ASSERT_NULL(cnet_server_loop(NULL)));

  srv = cnet_create_server(loop, &huge, NULL, NULL);
  ASSERT_NOT_NULL(srv);
  ASSERT(cnet_server_loop(srv) == loop);
  ASSERT_EQ(UINT_MAX, cnet_server_max_connections(srv));
  ASSERT_EQ(0, cnet_server_listen_port(srv, 0, "127.0.0.1", 0, NULL, NULL));
  cnet_server_free(srv);
  loop_finish(loop);
}

static int listening_events, server_errors;

static void count_listening(cnet_server_t *srv, const cnet_event_t *ev,
                            void *ctx) {
  (void)srv;
  (void)ev;
  (void)ctx;
  listening_events++;
}

static cnet_error_t last_server_error;

static void count_server_error(cnet_server_t *srv, const cnet_event_t *ev,
                               void *ctx) {
  (void)srv;
  (void)ctx;
  last_server_error = *ev->error;
  server_errors++;
}

/* After a refused listen: not listening, no 'listening' listener added,
 * no file made, nothing deferred. */
static void assert_not_listening(cnet_server_t *srv) {
  cnet_address_t a;

  ASSERT(!cnet_server_listening(srv));
  ASSERT_EQ(0, cnet_server_listener_count(srv, CNET_EV_LISTENING));
  ASSERT_EQ(UV_ENOTCONN, cnet_server_address(srv, &a));
}

TEST_CASE(bi15_server_listen_options) {
  uv_loop_t *loop = loop_new();
  cnet_server_t *srv = cnet_create_server(loop, NULL, NULL, NULL);
  const char *path = temp_socket_path();
  static const char nul_path[] = "/tmp/cnet-bad-input\0tail";
  char abstract_long[120];
  cnet_listen_options_t o;

  ASSERT_EQ(0, cnet_server_on(srv, CNET_EV_ERROR, count_server_error, NULL));
  o = (cnet_listen_options_t){.port = 0};
  REFUSED(cnet_server_listen(NULL, &o, count_listening, NULL),
          "ERR_INVALID_ARG_TYPE",
          "The \"server\" argument must be of type cnet_server_t. Received "
          "NULL");
  REFUSED(cnet_server_listen(srv, NULL, count_listening, NULL),
          "ERR_INVALID_ARG_TYPE",
          "The \"options\" argument must be of type object. Received NULL");
  /* PT-01/PT-03 */
  o = (cnet_listen_options_t){.port = -1};
  REFUSED(cnet_server_listen(srv, &o, count_listening, NULL),
          "ERR_SOCKET_BAD_PORT",
          "options.port should be >= 0 and < 65536. Received type number "
          "(-1).");
  o = (cnet_listen_options_t){.port = 65536, .host = "127.0.0.1"};
  REFUSED(cnet_server_listen(srv, &o, count_listening, NULL),
          "ERR_SOCKET_BAD_PORT",
          "options.port should be >= 0 and < 65536. Received type number "
          "(65536).");
  o = (cnet_listen_options_t){.port = INT_MAX};
  REFUSED(cnet_server_listen(srv, &o, count_listening, NULL),
          "ERR_SOCKET_BAD_PORT",
          "options.port should be >= 0 and < 65536. Received type number "
          "(2147483647).");
  /* LS-10: the bad port wins over a good path; no file is made */
  o = (cnet_listen_options_t){.port = INT_MIN, .path = path};
  REFUSED(cnet_server_listen(srv, &o, count_listening, NULL),
          "ERR_SOCKET_BAD_PORT",
          "options.port should be >= 0 and < 65536. Received type number "
          "(-2147483648).");
  ASSERT_EQ(-1, access(path, F_OK));
  /* backlog: cnet refuses a negative one (Node v20 passes it on) */
  o = (cnet_listen_options_t){.backlog = -1};
  REFUSED(cnet_server_listen(srv, &o, count_listening, NULL),
          "ERR_INVALID_ARG_VALUE",
          "The property 'options.backlog' is invalid. Received -1");
  o = (cnet_listen_options_t){.host = ""};
  REFUSED(cnet_server_listen(srv, &o, count_listening, NULL),
          "ERR_INVALID_ARG_VALUE",
          "The property 'options.host' is invalid. Received ''");
  /* LS-12: { path: '' } */
  o = (cnet_listen_options_t){.path = ""};
  REFUSED(cnet_server_listen(srv, &o, count_listening, NULL),
          "ERR_INVALID_ARG_VALUE",
          "The argument 'options' is invalid. Received { path: '' }");
  /* paths that do not fit sun_path: refused, never truncated */
  o = (cnet_listen_options_t){
      .path = long_path(sizeof(((struct sockaddr_un *)0)->sun_path))};
  REFUSED(cnet_server_listen(srv, &o, count_listening, NULL), "ENAMETOOLONG",
          "listen ENAMETOOLONG");
  o.path = long_path(4000);
  REFUSED(cnet_server_listen(srv, &o, count_listening, NULL), "ENAMETOOLONG",
          "listen ENAMETOOLONG");
  memset(abstract_long, 'z', sizeof(abstract_long));
  abstract_long[0] = '\0';
  o = (cnet_listen_options_t){.path = abstract_long, .path_len = 109};
  REFUSED(cnet_server_listen(srv, &o, count_listening, NULL), "ENAMETOOLONG",
          "listen ENAMETOOLONG");
  /* an embedded NUL where a length is given: another name; refused */
  o = (cnet_listen_options_t){.path = nul_path,
                              .path_len = sizeof(nul_path) - 1};
  REFUSED(cnet_server_listen(srv, &o, count_listening, NULL), "EINVAL",
          "listen EINVAL");
  ASSERT_EQ(-1, access("/tmp/cnet-bad-input", F_OK));
  /* IP-C-06: an abstract name with readable_all */
  o = (cnet_listen_options_t){
      .path = "\0cnet-abs", .path_len = 9, .readable_all = true};
  REFUSED(cnet_server_listen(srv, &o, count_listening, NULL),
          "ERR_INVALID_ARG_VALUE",
          "The argument 'options' can not set readableAll or writableAllt "
          "to true when path is abstract unix socket. Received { path: "
          "'\\x00cnet-abs', readableAll: true }");
  assert_not_listening(srv);
  run_for(loop, 20);
  ASSERT_EQ(0, listening_events);
  ASSERT_EQ(0, server_errors);

  /* Still able to listen; only this callback is added. */
  o = (cnet_listen_options_t){.path = path};
  ACCEPTED(cnet_server_listen(srv, &o, count_listening, NULL));
  ASSERT_EQ(1, cnet_server_listener_count(srv, CNET_EV_LISTENING));
  RUN_UNTIL(loop, listening_events == 1);
  ASSERT(cnet_server_listening(srv));
  ASSERT_EQ(0, access(path, F_OK));
  /* While listening: ERR_SERVER_ALREADY_LISTEN comes first, and the
   * server listens on as before. */
  o = (cnet_listen_options_t){.port = -1};
  REFUSED(cnet_server_listen(srv, &o, count_listening, NULL),
          "ERR_SERVER_ALREADY_LISTEN",
          "Listen method has been called more than once without closing.");
  ASSERT(cnet_server_listening(srv));
  ASSERT_EQ(0, cnet_server_listener_count(srv, CNET_EV_LISTENING));
  run_for(loop, 20);
  ASSERT_EQ(1, listening_events);
  ASSERT_EQ(0, server_errors);
  cnet_server_free(srv);
  loop_finish(loop);
  ASSERT_EQ(-1, access(path, F_OK));
}

TEST_CASE(bi16_server_listen_port_and_path) {
  uv_loop_t *loop = loop_new();
  cnet_server_t *srv = cnet_create_server(loop, NULL, NULL, NULL);
  static const int bad_ports[] = {-1, 65536, INT_MAX, INT_MIN};
  char want[128];

  ASSERT_EQ(0, cnet_server_on(srv, CNET_EV_ERROR, count_server_error, NULL));
  REFUSED(cnet_server_listen_port(NULL, 0, NULL, 0, NULL, NULL),
          "ERR_INVALID_ARG_TYPE",
          "The \"server\" argument must be of type cnet_server_t. Received "
          "NULL");
  for (size_t i = 0; i < ARRAY_LEN(bad_ports); i++) {
    snprintf(want, sizeof(want),
             "options.port should be >= 0 and < 65536. Received type number "
             "(%d).",
             bad_ports[i]);
    REFUSED(cnet_server_listen_port(srv, bad_ports[i], "127.0.0.1", 0,
                                    count_listening, NULL),
            "ERR_SOCKET_BAD_PORT", want);
  }
  REFUSED(cnet_server_listen_port(srv, 0, "", 0, count_listening, NULL),
          "ERR_INVALID_ARG_VALUE",
          "The property 'options.host' is invalid. Received ''");
  REFUSED(cnet_server_listen_port(srv, 0, NULL, INT_MIN, count_listening, NULL),
          "ERR_INVALID_ARG_VALUE",
          "The property 'options.backlog' is invalid. Received -2147483648");
  REFUSED(cnet_server_listen_path(NULL, temp_socket_path(), 0, NULL, NULL),
          "ERR_INVALID_ARG_TYPE",
          "The \"server\" argument must be of type cnet_server_t. Received "
          "NULL");
  REFUSED(cnet_server_listen_path(srv, NULL, 0, count_listening, NULL),
          "ERR_INVALID_ARG_TYPE",
          "The \"path\" argument must be of type string. Received NULL");
  REFUSED(cnet_server_listen_path(srv, "", 0, count_listening, NULL),
          "ERR_INVALID_ARG_VALUE",
          "The argument 'options' is invalid. Received { path: '' }");
  REFUSED(
      cnet_server_listen_path(srv, long_path(108), 0, count_listening, NULL),
      "ENAMETOOLONG", "listen ENAMETOOLONG");
  REFUSED(cnet_server_listen_path(srv, temp_socket_path(), -1, count_listening,
                                  NULL),
          "ERR_INVALID_ARG_VALUE",
          "The property 'options.backlog' is invalid. Received -1");
  assert_not_listening(srv);
  run_for(loop, 20);
  ASSERT_EQ(0, listening_events);
  /* A path of 107 bytes fits (108 with its NUL). */
  {
    char p[108];
    snprintf(p, sizeof(p), "/tmp/cnet-bi-%ld-", (long)getpid());
    memset(p + strlen(p), 'p', sizeof(p) - 1 - strlen(p));
    p[sizeof(p) - 1] = '\0';
    ASSERT_EQ(107, strlen(p));
    unlink(p);
    ACCEPTED(cnet_server_listen_path(srv, p, 0, count_listening, NULL));
    RUN_UNTIL(loop, listening_events == 1);
    ASSERT_EQ(0, access(p, F_OK));
    ASSERT_EQ(0, cnet_server_close(srv, NULL, NULL));
    ASSERT_EQ(-1, access(p, F_OK));
  }
  ACCEPTED(
      cnet_server_listen_port(srv, 0, "127.0.0.1", 0, count_listening, NULL));
  RUN_UNTIL(loop, listening_events == 2);
  ASSERT_EQ(0, server_errors);
  cnet_server_free(srv);
  loop_finish(loop);
}

TEST_CASE(bi17_server_listen_handles) {
  uv_loop_t *loop = loop_new();
  cnet_server_t *srv = cnet_create_server(loop, NULL, NULL, NULL);
  cnet_server_t *idle = cnet_create_server(loop, NULL, NULL, NULL);
  cnet_socket_t *unconnected = cnet_socket_new(loop, NULL);
  int before = fd_count();

  ASSERT_EQ(0, cnet_server_on(srv, CNET_EV_ERROR, count_server_error, NULL));
  REFUSED(cnet_server_listen_fd(NULL, 3, 0, NULL, NULL), "EINVAL",
          "invalid argument");
  REFUSED(cnet_server_listen_fd(srv, -1, 0, count_listening, NULL), "EBADF",
          "listen EBADF");
  REFUSED(cnet_server_listen_fd(srv, INT_MIN, 0, count_listening, NULL),
          "EBADF", "listen EBADF");
  REFUSED(cnet_server_listen_server(NULL, idle, 0, NULL, NULL), "EINVAL",
          "invalid argument");
  REFUSED(cnet_server_listen_server(srv, NULL, 0, count_listening, NULL),
          "EINVAL", "invalid argument");
  REFUSED(cnet_server_listen_server(srv, idle, 0, count_listening, NULL),
          "ERR_SERVER_NOT_RUNNING", "Server is not running.");
  REFUSED(cnet_server_listen_server(srv, srv, 0, count_listening, NULL),
          "ERR_SERVER_NOT_RUNNING", "Server is not running.");
  REFUSED(cnet_server_listen_socket(NULL, unconnected, 0, NULL, NULL), "EINVAL",
          "invalid argument");
  REFUSED(cnet_server_listen_socket(srv, NULL, 0, count_listening, NULL),
          "EINVAL", "invalid argument");
  REFUSED(cnet_server_listen_socket(srv, unconnected, 0, count_listening, NULL),
          "EBADF", "listen EBADF");
  assert_not_listening(srv);
  run_for(loop, 20);
  ASSERT_EQ(0, listening_events);
  ASSERT_EQ(0, server_errors);
  ASSERT_EQ(before, fd_count_now()); /* nothing duplicated and kept */
  /* A descriptor that is not open is the system's answer, not misuse:
   * 'error' later (LS-18), and the server may listen after it. */
  ACCEPTED(cnet_server_listen_fd(srv, 1000, 0, count_listening, NULL));
  RUN_UNTIL(loop, server_errors == 1);
  ASSERT_STR_EQ("EBADF", last_server_error.code);
  ASSERT_STR_EQ("listen EBADF: bad file descriptor", last_server_error.message);
  server_errors = 0;
  /* the callback stays a once('listening') listener, as in Node */
  ASSERT_EQ(1, cnet_server_listener_count(srv, CNET_EV_LISTENING));
  ASSERT_EQ(0, cnet_server_off(srv, CNET_EV_LISTENING, count_listening, NULL));
  assert_not_listening(srv);
  /* while listening: already listening, whatever the handle */
  ACCEPTED(cnet_server_listen_port(idle, 0, "127.0.0.1", 0, NULL, NULL));
  ACCEPTED(cnet_server_listen_server(srv, idle, 0, count_listening, NULL));
  RUN_UNTIL(loop, listening_events == 1);
  REFUSED(cnet_server_listen_fd(srv, -1, 0, count_listening, NULL),
          "ERR_SERVER_ALREADY_LISTEN",
          "Listen method has been called more than once without closing.");
  REFUSED(cnet_server_listen_server(srv, idle, 0, count_listening, NULL),
          "ERR_SERVER_ALREADY_LISTEN",
          "Listen method has been called more than once without closing.");
  REFUSED(cnet_server_listen_socket(srv, unconnected, 0, count_listening, NULL),
          "ERR_SERVER_ALREADY_LISTEN",
          "Listen method has been called more than once without closing.");
  ASSERT(cnet_server_listening(srv));
  ASSERT_EQ(server_port(idle), server_port(srv));
  cnet_socket_free(unconnected);
  cnet_server_free(srv);
  cnet_server_free(idle);
  loop_finish(loop);
  ASSERT_EQ(0, server_errors);
}

TEST_CASE(bi18_server_properties) {
  uv_loop_t *loop = loop_new();
  cnet_server_t *srv = cnet_create_server(loop, NULL, NULL, NULL);
  cnet_address_t a;

  /* getters on NULL: an empty server's answers */
  QUIET(ASSERT(!cnet_server_listening(NULL)));
  QUIET(ASSERT_EQ(0, cnet_server_connections(NULL)));
  QUIET(ASSERT_EQ(0, cnet_server_max_connections(NULL)));
  QUIET(ASSERT_EQ(0, cnet_server_accept_errors(NULL)));
  QUIET(ASSERT_EQ(0, cnet_server_blocked(NULL)));
  QUIET(ASSERT_NULL(cnet_server_get_data(NULL)));
  /* void functions on NULL: nothing */
  QUIET(cnet_server_set_max_connections(NULL, 5));
  QUIET(cnet_server_ref(NULL));
  QUIET(cnet_server_unref(NULL));
  QUIET(cnet_server_set_data(NULL, &data_marker));
  QUIET(cnet_server_free(NULL));
  /* address(): NULL out is misuse; a NULL server is "not listening" */
  REFUSED(cnet_server_address(srv, NULL), "EINVAL", "invalid argument");
  REFUSED(cnet_server_address(NULL, NULL), "EINVAL", "invalid argument");
  memset(&a, 0x5a, sizeof(a));
  ASSERT_EQ(UV_ENOTCONN, cnet_server_address(NULL, &a));
  ASSERT_EQ(0, a.port);
  /* extremes are values, not errors */
  cnet_server_set_max_connections(srv, UINT_MAX);
  ASSERT_EQ(UINT_MAX, cnet_server_max_connections(srv));
  cnet_server_set_max_connections(srv, 0);
  cnet_server_set_data(srv, &data_marker);
  ASSERT(cnet_server_get_data(srv) == &data_marker);
  /* ref/unref twice are no more than once */
  cnet_server_unref(srv);
  cnet_server_unref(srv);
  cnet_server_ref(srv);
  cnet_server_ref(srv);
  ASSERT_EQ(0, cnet_server_listen_port(srv, 0, "127.0.0.1", 0, NULL, NULL));
  ASSERT_EQ(0, cnet_server_address(srv, &a));
  ASSERT_EQ(4, a.family);
  cnet_server_free(srv);
  loop_finish(loop);
}

static int close_events;

static void count_close(cnet_server_t *srv, const cnet_event_t *ev, void *ctx) {
  (void)srv;
  (void)ev;
  (void)ctx;
  close_events++;
}

static void never_count(cnet_server_t *srv, const cnet_error_t *err, size_t n,
                        void *ctx) {
  (void)srv;
  (void)err;
  (void)n;
  (void)ctx;
  never_calls++;
}

TEST_CASE(bi19_server_close_family) {
  uv_loop_t *loop = loop_new();
  cnet_server_t *srv = cnet_create_server(loop, NULL, NULL, NULL);

  REFUSED(cnet_server_close(NULL, never_server, NULL), "EINVAL",
          "invalid argument");
  REFUSED(cnet_server_close_idle(NULL), "EINVAL", "invalid argument");
  REFUSED(cnet_server_close_gracefully(NULL, 0, never_server, NULL), "EINVAL",
          "invalid argument");
  REFUSED(cnet_server_close_gracefully(NULL, UINT64_MAX, NULL, NULL), "EINVAL",
          "invalid argument");
  /* Node: getConnections(null) throws ERR_INVALID_ARG_TYPE; the header
   * gives UV_EINVAL for a NULL server or callback. */
  REFUSED(cnet_server_get_connections(NULL, never_count, NULL), "EINVAL",
          "invalid argument");
  REFUSED(cnet_server_get_connections(srv, NULL, NULL), "EINVAL",
          "invalid argument");
  run_for(loop, 20);
  ASSERT_EQ(0, never_calls);
  /* Listening, then the calls with extreme but defined values. */
  ASSERT_EQ(0, cnet_server_listen_port(srv, 0, "127.0.0.1", 0, NULL, NULL));
  ASSERT_EQ(0, cnet_server_close_idle(srv)); /* nobody to end */
  ASSERT(cnet_server_listening(srv));
  ACCEPTED(cnet_server_close_gracefully(srv, UINT64_MAX, count_close, NULL));
  ASSERT(!cnet_server_listening(srv));
  RUN_UNTIL(loop, close_events == 1);
  /* close() again: not running, 'close' once more (CL-03), no error now */
  ACCEPTED(cnet_server_close(srv, count_close, NULL));
  RUN_UNTIL(loop, close_events == 2);
  cnet_server_free(srv);
  loop_finish(loop);
  ASSERT_EQ(0, never_calls);
}

/* ======================================================================== */
/* Name lookup and the autoselection defaults                                */

typedef struct {
  int mode;
  const char *host;
  char error[CNET_MESSAGE_MAX];
  char code[64];
  char syscall[16];
  int lookups;
  bool answered; /* the 'lookup' event carried an address */
  bool closed;
} lookup_case_t;

static uv_loop_t *lookup_loop;

static void bad_resolver(cnet_lookup_t *req, const char *host,
                         const cnet_lookup_options_t *opts, void *ctx) {
  lookup_case_t *lc = ctx;
  cnet_lookup_address_t a;

  (void)opts;
  ASSERT_STR_EQ(lc->host, host);
  /* NULL requests: nothing */
  cnet_lookup_done(NULL, 0, NULL, 0);
  cnet_lookup_fail(NULL, NULL);
  cnet_lookup_system(NULL, "localhost", NULL, NULL);
  ASSERT_NULL(cnet_lookup_loop(NULL));
  ASSERT(cnet_lookup_loop(req) == lookup_loop);
  switch (lc->mode) {
  case 0: /* success with no addresses at all */
    cnet_lookup_done(req, 0, NULL, 3);
    break;
  case 1: /* success, n == 0 */
    a = (cnet_lookup_address_t){"127.0.0.1", 4};
    cnet_lookup_done(req, 0, &a, 0);
    break;
  case 2: /* an address that is NULL */
    a = (cnet_lookup_address_t){NULL, 4};
    cnet_lookup_done(req, 0, &a, 1);
    break;
  case 3: /* not an IP */
    a = (cnet_lookup_address_t){"", 4};
    cnet_lookup_done(req, 0, &a, 1);
    break;
  case 4: /* a bad family */
    a = (cnet_lookup_address_t){"127.0.0.1", 5};
    cnet_lookup_done(req, 0, &a, 1);
    break;
  case 5: /* a positive "error" */
    cnet_lookup_done(req, 42, NULL, 0);
    break;
  case 6: /* fail without an error of one's own */
    cnet_lookup_fail(req, NULL);
    break;
  default: /* delegate with NULL host and options: the request's own */
    cnet_lookup_system(req, NULL, NULL, NULL);
    break;
  }
}

static void lookup_on_error(cnet_socket_t *s, const cnet_event_t *ev,
                            void *ctx) {
  lookup_case_t *lc = ctx;

  (void)s;
  snprintf(lc->error, sizeof(lc->error), "%s", ev->error->message);
  snprintf(lc->code, sizeof(lc->code), "%s", ev->error->code);
  snprintf(lc->syscall, sizeof(lc->syscall), "%s",
           ev->error->syscall != NULL ? ev->error->syscall : "");
}

static void lookup_on_lookup(cnet_socket_t *s, const cnet_event_t *ev,
                             void *ctx) {
  lookup_case_t *lc = ctx;

  (void)s;
  lc->lookups++;
  lc->answered = ev->lookup.error == NULL && ev->lookup.address != NULL;
  ASSERT_STR_EQ(lc->host, ev->lookup.host);
}

static void lookup_on_close(cnet_socket_t *s, const cnet_event_t *ev,
                            void *ctx) {
  (void)s;
  (void)ev;
  ((lookup_case_t *)ctx)->closed = true;
}

TEST_CASE(bi20_lookup_answers) {
  static const struct {
    const char *code, *message;
  } want[] = {
      {"ENOTFOUND", "getaddrinfo ENOTFOUND bad.example"},
      {"ENOTFOUND", "getaddrinfo ENOTFOUND bad.example"},
      {"ERR_INVALID_IP_ADDRESS", "Invalid IP address: undefined"},
      {"ERR_INVALID_IP_ADDRESS", "Invalid IP address: "},
      {"ERR_INVALID_ADDRESS_FAMILY", "Invalid address family: 5 bad.example:9"},
      {"EAI_FAIL", "getaddrinfo EAI_FAIL bad.example"},
      {"EAI_FAIL", "getaddrinfo EAI_FAIL bad.example"},
      {NULL, NULL}, /* localhost, through cnet_lookup_system */
  };
  lookup_case_t lc[ARRAY_LEN(want)];
  cnet_socket_t *s[ARRAY_LEN(want)];
  uv_loop_t *loop = loop_new();
  int closed = closed_port();

  lookup_loop = loop;
  memset(lc, 0, sizeof(lc));
  /* outside any lookup */
  QUIET(cnet_lookup_done(NULL, UV_EAI_NONAME, NULL, 0));
  QUIET(cnet_lookup_fail(NULL, NULL));
  QUIET(cnet_lookup_system(NULL, NULL, NULL, NULL));
  QUIET(ASSERT_NULL(cnet_lookup_loop(NULL)));
  for (size_t i = 0; i < ARRAY_LEN(lc); i++) {
    bool system = want[i].code == NULL;
    cnet_connect_options_t o = {.port = system ? closed : 9,
                                .host = system ? "localhost" : "bad.example",
                                .lookup = bad_resolver,
                                .lookup_ctx = &lc[i],
                                .auto_select_family = CNET_AUTO_SELECT_OFF};

    s[i] = cnet_socket_new(loop, NULL);
    lc[i].mode = (int)i;
    lc[i].host = o.host;
    ASSERT_EQ(0, cnet_socket_on(s[i], CNET_EV_ERROR, lookup_on_error, &lc[i]));
    ASSERT_EQ(0,
              cnet_socket_on(s[i], CNET_EV_LOOKUP, lookup_on_lookup, &lc[i]));
    ASSERT_EQ(0, cnet_socket_on(s[i], CNET_EV_CLOSE, lookup_on_close, &lc[i]));
    ACCEPTED(cnet_socket_connect(s[i], &o, never_socket, NULL));
  }
  run_bounded(loop, 5000);
  for (size_t i = 0; i < ARRAY_LEN(lc); i++) {
    ASSERT(lc[i].closed);
    ASSERT_EQ(1, lc[i].lookups);
    if (want[i].code != NULL) {
      ASSERT_STR_EQ(want[i].code, lc[i].code);
      ASSERT_STR_EQ(want[i].message, lc[i].error);
    } else { /* resolved; the closed port (on whichever family) refuses */
      ASSERT(lc[i].answered);
      ASSERT_STR_EQ("connect", lc[i].syscall);
    }
    cnet_socket_free(s[i]);
  }
  ASSERT_EQ(0, never_calls);
  loop_finish(loop);
}

TEST_CASE(bi21_auto_select_defaults) {
  unsigned before = cnet_get_default_auto_select_family_attempt_timeout();

  ASSERT_EQ(250, before);
  REFUSED(cnet_set_default_auto_select_family_attempt_timeout(0),
          "ERR_OUT_OF_RANGE",
          "The value of \"value\" is out of range. It must be >= 1 && <= "
          "2147483647. Received 0");
  REFUSED(cnet_set_default_auto_select_family_attempt_timeout(
              (unsigned)INT32_MAX + 1),
          "ERR_OUT_OF_RANGE",
          "The value of \"value\" is out of range. It must be >= 1 && <= "
          "2147483647. Received 2147483648");
  REFUSED(cnet_set_default_auto_select_family_attempt_timeout(UINT_MAX),
          "ERR_OUT_OF_RANGE",
          "The value of \"value\" is out of range. It must be >= 1 && <= "
          "2147483647. Received 4294967295");
  ASSERT_EQ(before, cnet_get_default_auto_select_family_attempt_timeout());
  ACCEPTED(cnet_set_default_auto_select_family_attempt_timeout(INT32_MAX));
  ASSERT_EQ(INT32_MAX, cnet_get_default_auto_select_family_attempt_timeout());
  ACCEPTED(cnet_set_default_auto_select_family_attempt_timeout(1));
  ASSERT_EQ(10, cnet_get_default_auto_select_family_attempt_timeout());
  /* a bool has no bad values; both round-trip */
  QUIET(cnet_set_default_auto_select_family(false));
  ASSERT(!cnet_get_default_auto_select_family());
  QUIET(cnet_set_default_auto_select_family(true));
  ASSERT(cnet_get_default_auto_select_family());
}

/* ======================================================================== */
/* Socket: making and connecting                                             */

static bool onread_cb(cnet_socket_t *s, char *data, size_t n, void *ctx) {
  (void)s;
  (void)data;
  (void)n;
  (void)ctx;
  return true;
}

TEST_CASE(bi22_socket_new) {
  uv_loop_t *loop = loop_new();
  char buf[16];
  cnet_onread_t no_cb = {.buffer = buf, .len = sizeof(buf)};
  cnet_onread_t no_buffer = {.callback = onread_cb};
  cnet_onread_t zero_len = {.buffer = buf, .len = 0, .callback = onread_cb};
  int file = open("/dev/null", O_RDONLY);
  int sv[2], tcp = socket(AF_INET, SOCK_STREAM, 0);
  int closed_fd;
  cnet_socket_options_t o;
  cnet_socket_t *s;
  int before;

  ASSERT_GE(file, 0);
  ASSERT_GE(tcp, 0);
  ASSERT_EQ(0, socketpair(AF_UNIX, SOCK_STREAM, 0, sv));
  closed_fd = dup(file);
  close(closed_fd);
  before = fd_count();
  /* SC-02 */
  o = (cnet_socket_options_t){.wrap_fd = true, .fd = -1};
  REFUSED_NULL(cnet_socket_new(loop, &o), "ERR_OUT_OF_RANGE",
               "The value of \"fd\" is out of range. It must be >= 0 && <= "
               "2147483647. Received -1");
  o.fd = INT_MIN;
  REFUSED_NULL(cnet_socket_new(loop, &o), "ERR_OUT_OF_RANGE",
               "The value of \"fd\" is out of range. It must be >= 0 && <= "
               "2147483647. Received -2147483648");
  o.fd = closed_fd;
  REFUSED_NULL(cnet_socket_new(loop, &o), "ERR_INVALID_FD_TYPE",
               "Unsupported fd type: UNKNOWN");
  o.fd = file;
  REFUSED_NULL(cnet_socket_new(loop, &o), "ERR_INVALID_FD_TYPE",
               "Unsupported fd type: FILE");
  /* a channel needs a Unix socket */
  o = (cnet_socket_options_t){.wrap_fd = true, .fd = tcp, .channel = true};
  REFUSED_NULL(cnet_socket_new(loop, &o), "ERR_INVALID_ARG_VALUE",
               "The property 'options.channel' needs a Unix socket. "
               "Received TCP");
  /* onread: no callback, no memory, a buffer of zero bytes */
  o = (cnet_socket_options_t){.onread = &no_cb};
  REFUSED_NULL(cnet_socket_new(loop, &o), "ERR_INVALID_ARG_VALUE",
               "The property 'options.onread' is invalid. Received { ... }");
  o.onread = &no_buffer;
  REFUSED_NULL(cnet_socket_new(loop, &o), "ERR_INVALID_ARG_VALUE",
               "The property 'options.onread' is invalid. Received { ... }");
  o.onread = &zero_len;
  REFUSED_NULL(cnet_socket_new(loop, &o), "ERR_INVALID_ARG_VALUE",
               "The property 'options.onread' is invalid. Received { ... }");
  /* ... also with a good descriptor: it is still the caller's */
  o = (cnet_socket_options_t){
      .wrap_fd = true, .fd = sv[0], .onread = &zero_len};
  REFUSED_NULL(cnet_socket_new(loop, &o), "ERR_INVALID_ARG_VALUE",
               "The property 'options.onread' is invalid. Received { ... }");
  ASSERT_EQ(before, fd_count_now());
  ASSERT(fd_is_open(sv[0]) && fd_is_open(file) && fd_is_open(tcp));
  /* extremes that are values */
  o = (cnet_socket_options_t){.high_water_mark = SIZE_MAX};
  s = cnet_socket_new(loop, &o);
  ASSERT_NOT_NULL(s);
  cnet_socket_free(s);
  /* the descriptor still works for a good wrap */
  o = (cnet_socket_options_t){.wrap_fd = true, .fd = sv[0]};
  s = cnet_socket_new(loop, &o);
  ASSERT_NOT_NULL(s);
  ASSERT_EQ(1, cnet_socket_write(s, "x", 1, NULL, NULL));
  ASSERT_EQ(1, read(sv[1], buf, sizeof(buf)));
  ASSERT_EQ('x', buf[0]);
  cnet_socket_free(s); /* closes sv[0] */
  loop_finish(loop);
  close(sv[1]);
  close(file);
  close(tcp);
}

/* After a refused connect: not connecting, no 'connect' listener added. */
static void assert_idle_socket(cnet_socket_t *s) {
  ASSERT(!cnet_socket_connecting(s));
  ASSERT(!cnet_socket_destroyed(s));
  ASSERT(cnet_socket_pending(s));
  ASSERT_EQ(0, cnet_socket_listener_count(s, CNET_EV_CONNECT));
  ASSERT_EQ(0, cnet_socket_timeout(s));
}

TEST_CASE(bi23_socket_connect_options) {
  uv_loop_t *loop = loop_new();
  cnet_socket_t *s = cnet_socket_new(loop, NULL);
  cnet_server_t *srv = cnet_create_server(loop, NULL, NULL, NULL);
  static const char nul_path[] = "/tmp/cnet-bad-input\0tail";
  char abstract_long[120];
  cnet_connect_options_t o;
  int port, connects = 0;

  ASSERT_EQ(0, cnet_server_listen_port(srv, 0, "127.0.0.1", 0, NULL, NULL));
  port = server_port(srv);
  ASSERT_EQ(0, cnet_socket_on(s, CNET_EV_ERROR, never_socket, NULL));
  o = (cnet_connect_options_t){.port = port, .host = "127.0.0.1"};
  REFUSED(cnet_socket_connect(NULL, &o, never_socket, NULL),
          "ERR_INVALID_ARG_TYPE",
          "The \"socket\" argument must be of type cnet_socket_t. Received "
          "NULL");
  REFUSED(cnet_socket_connect(s, NULL, never_socket, NULL),
          "ERR_INVALID_ARG_TYPE",
          "The \"options\" argument must be of type object. Received NULL");
  /* CN-03 */
  o = (cnet_connect_options_t){.host = "127.0.0.1"};
  REFUSED(cnet_socket_connect(s, &o, never_socket, NULL), "ERR_MISSING_ARGS",
          "The \"options\" or \"port\" or \"path\" argument must be "
          "specified");
  /* PT-01/PT-03 */
  o = (cnet_connect_options_t){.port = 65536, .host = "127.0.0.1"};
  REFUSED(cnet_socket_connect(s, &o, never_socket, NULL), "ERR_SOCKET_BAD_PORT",
          "Port should be >= 0 and < 65536. Received type number (65536).");
  o.port = -1;
  REFUSED(cnet_socket_connect(s, &o, never_socket, NULL), "ERR_SOCKET_BAD_PORT",
          "Port should be >= 0 and < 65536. Received type number (-1).");
  o.port = INT_MAX;
  REFUSED(cnet_socket_connect(s, &o, never_socket, NULL), "ERR_SOCKET_BAD_PORT",
          "Port should be >= 0 and < 65536. Received type number "
          "(2147483647).");
  o.port = INT_MIN; /* not "no port" (0 is): a bad one */
  REFUSED(cnet_socket_connect(s, &o, never_socket, NULL), "ERR_SOCKET_BAD_PORT",
          "Port should be >= 0 and < 65536. Received type number "
          "(-2147483648).");
  /* local end */
  o = (cnet_connect_options_t){
      .port = port, .host = "127.0.0.1", .local_port = 65536};
  REFUSED(cnet_socket_connect(s, &o, never_socket, NULL), "ERR_SOCKET_BAD_PORT",
          "options.localPort should be >= 0 and < 65536. Received type "
          "number (65536).");
  o = (cnet_connect_options_t){
      .port = port, .host = "127.0.0.1", .local_port = -1};
  REFUSED(cnet_socket_connect(s, &o, never_socket, NULL), "ERR_SOCKET_BAD_PORT",
          "options.localPort should be >= 0 and < 65536. Received type "
          "number (-1).");
  o = (cnet_connect_options_t){
      .port = port, .host = "127.0.0.1", .local_address = "bogus"};
  REFUSED(cnet_socket_connect(s, &o, never_socket, NULL),
          "ERR_INVALID_IP_ADDRESS", "Invalid IP address: bogus");
  o.local_address = "";
  REFUSED(cnet_socket_connect(s, &o, never_socket, NULL),
          "ERR_INVALID_IP_ADDRESS", "Invalid IP address: ");
  /* CN-11, CN-10, autoselection */
  o = (cnet_connect_options_t){.port = port, .host = "localhost", .family = 5};
  REFUSED(cnet_socket_connect(s, &o, never_socket, NULL),
          "ERR_INVALID_ARG_VALUE",
          "The property 'options.family' must be one of: 0, 4, 6. Received 5");
  o.family = AF_INET;
  REFUSED(cnet_socket_connect(s, &o, never_socket, NULL),
          "ERR_INVALID_ARG_VALUE",
          "The property 'options.family' must be one of: 0, 4, 6. Received 2");
  o = (cnet_connect_options_t){.port = port, .host = "localhost", .hints = 999};
  REFUSED(cnet_socket_connect(s, &o, never_socket, NULL),
          "ERR_INVALID_ARG_VALUE",
          "The argument 'hints' is invalid. Received 999");
  o.hints = -1;
  REFUSED(cnet_socket_connect(s, &o, never_socket, NULL),
          "ERR_INVALID_ARG_VALUE",
          "The argument 'hints' is invalid. Received -1");
  o = (cnet_connect_options_t){
      .port = port,
      .host = "localhost",
      .auto_select_family =
          (cnet_auto_select_t)(CNET_AUTO_SELECT_PARALLEL + 1)};
  REFUSED(cnet_socket_connect(s, &o, never_socket, NULL),
          "ERR_INVALID_ARG_VALUE",
          "The property 'options.autoSelectFamily' is invalid. Received 4");
  o.auto_select_family = (cnet_auto_select_t)-1;
  REFUSED(cnet_socket_connect(s, &o, never_socket, NULL),
          "ERR_INVALID_ARG_VALUE",
          "The property 'options.autoSelectFamily' is invalid. Received -1");
  o = (cnet_connect_options_t){.port = port,
                               .host = "localhost",
                               .auto_select_family_attempt_timeout =
                                   (unsigned)INT32_MAX + 1};
  REFUSED(cnet_socket_connect(s, &o, never_socket, NULL), "ERR_OUT_OF_RANGE",
          "The value of \"options.autoSelectFamilyAttemptTimeout\" is out of "
          "range. It must be >= 1 && <= 2147483647. Received 2147483648");
  /* paths: too long, an embedded NUL, empty */
  o = (cnet_connect_options_t){.path = long_path(108)};
  REFUSED(cnet_socket_connect(s, &o, never_socket, NULL), "ENAMETOOLONG",
          "connect ENAMETOOLONG");
  memset(abstract_long, 'z', sizeof(abstract_long));
  abstract_long[0] = '\0';
  o = (cnet_connect_options_t){.path = abstract_long, .path_len = 109};
  REFUSED(cnet_socket_connect(s, &o, never_socket, NULL), "ENAMETOOLONG",
          "connect ENAMETOOLONG");
  o = (cnet_connect_options_t){.path = nul_path,
                               .path_len = sizeof(nul_path) - 1};
  REFUSED(cnet_socket_connect(s, &o, never_socket, NULL), "EINVAL",
          "connect EINVAL");
  o = (cnet_connect_options_t){.path = ""};
  REFUSED(cnet_socket_connect(s, &o, never_socket, NULL), "EINVAL",
          "connect EINVAL");
  /* a refused connect sets no timeout either (timeout is applied later) */
  o = (cnet_connect_options_t){
      .port = -1, .host = "127.0.0.1", .timeout = 1000};
  REFUSED(cnet_socket_connect(s, &o, never_socket, NULL), "ERR_SOCKET_BAD_PORT",
          "Port should be >= 0 and < 65536. Received type number (-1).");
  assert_idle_socket(s);
  run_for(loop, 20);
  ASSERT_EQ(0, never_calls);

  /* The socket still connects; while it does, connect is UV_EBUSY. */
  ASSERT_EQ(0, cnet_socket_off(s, CNET_EV_ERROR, never_socket, NULL));
  o = (cnet_connect_options_t){.port = port, .host = "127.0.0.1"};
  ACCEPTED(cnet_socket_connect(s, &o, NULL, NULL));
  REFUSED(cnet_socket_connect(s, &o, never_socket, NULL), "EBUSY",
          "connect EBUSY");
  REFUSED(cnet_socket_connect_port(s, 70000, NULL, never_socket, NULL), "EBUSY",
          "connect EBUSY");
  ASSERT_EQ(0, cnet_socket_listener_count(s, CNET_EV_CONNECT));
  while (cnet_socket_connecting(s))
    uv_run(loop, UV_RUN_ONCE);
  connects = !cnet_socket_pending(s);
  ASSERT_EQ(1, connects);
  REFUSED(cnet_socket_connect(s, &o, never_socket, NULL), "EBUSY",
          "connect EBUSY");
  ASSERT_EQ(0, never_calls);
  cnet_socket_free(s);
  cnet_server_free(srv);
  loop_finish(loop);
}

TEST_CASE(bi24_socket_connect_port_and_path) {
  uv_loop_t *loop = loop_new();
  cnet_socket_t *s = cnet_socket_new(loop, NULL);
  cnet_server_t *srv = cnet_create_server(loop, NULL, NULL, NULL);
  const char *path = temp_socket_path();
  static const int bad_ports[] = {-1, 65536, 1 << 30, INT_MIN};
  char want[128];
  int connected = 0;

  ASSERT_EQ(0, cnet_server_listen_path(srv, path, 0, NULL, NULL));
  REFUSED(cnet_socket_connect_port(NULL, 80, "127.0.0.1", NULL, NULL),
          "ERR_INVALID_ARG_TYPE",
          "The \"socket\" argument must be of type cnet_socket_t. Received "
          "NULL");
  for (size_t i = 0; i < ARRAY_LEN(bad_ports); i++) {
    snprintf(want, sizeof(want),
             "Port should be >= 0 and < 65536. Received type number (%d).",
             bad_ports[i]);
    REFUSED(cnet_socket_connect_port(s, bad_ports[i], "127.0.0.1", never_socket,
                                     NULL),
            "ERR_SOCKET_BAD_PORT", want);
    REFUSED(cnet_socket_connect_port(s, bad_ports[i], NULL, never_socket, NULL),
            "ERR_SOCKET_BAD_PORT", want);
  }
  REFUSED(cnet_socket_connect_path(NULL, path, NULL, NULL),
          "ERR_INVALID_ARG_TYPE",
          "The \"socket\" argument must be of type cnet_socket_t. Received "
          "NULL");
  REFUSED(cnet_socket_connect_path(s, NULL, never_socket, NULL),
          "ERR_INVALID_ARG_TYPE",
          "The \"path\" argument must be of type string. Received NULL");
  REFUSED(cnet_socket_connect_path(s, "", never_socket, NULL), "EINVAL",
          "connect EINVAL");
  REFUSED(cnet_socket_connect_path(s, long_path(108), never_socket, NULL),
          "ENAMETOOLONG", "connect ENAMETOOLONG");
  REFUSED(cnet_socket_connect_path(s, long_path(300), never_socket, NULL),
          "ENAMETOOLONG", "connect ENAMETOOLONG");
  assert_idle_socket(s);
  run_for(loop, 20);
  ASSERT_EQ(0, never_calls);
  /* still connects */
  ACCEPTED(cnet_socket_connect_path(s, path, NULL, NULL));
  while (cnet_socket_connecting(s))
    uv_run(loop, UV_RUN_ONCE);
  connected = !cnet_socket_pending(s);
  ASSERT_EQ(1, connected);
  cnet_socket_free(s);
  cnet_server_free(srv);
  loop_finish(loop);
}

TEST_CASE(bi25_create_connection) {
  uv_loop_t *loop = loop_new();
  cnet_onread_t bad_onread = {.callback = NULL};
  cnet_connect_options_t o;

  REFUSED_NULL(cnet_create_connection(loop, NULL, never_socket, NULL),
               "ERR_INVALID_ARG_TYPE",
               "The \"options\" argument must be of type object. Received "
               "NULL");
  REFUSED_NULL(cnet_connect(loop, NULL, never_socket, NULL),
               "ERR_INVALID_ARG_TYPE",
               "The \"options\" argument must be of type object. Received "
               "NULL");
  o = (cnet_connect_options_t){.port = 70000};
  REFUSED_NULL(cnet_create_connection(loop, &o, never_socket, NULL),
               "ERR_SOCKET_BAD_PORT",
               "Port should be >= 0 and < 65536. Received type number "
               "(70000).");
  REFUSED_NULL(cnet_connect(loop, &o, never_socket, NULL),
               "ERR_SOCKET_BAD_PORT",
               "Port should be >= 0 and < 65536. Received type number "
               "(70000).");
  o = (cnet_connect_options_t){.port = INT_MIN, .host = "127.0.0.1"};
  REFUSED_NULL(cnet_create_connection(loop, &o, never_socket, NULL),
               "ERR_SOCKET_BAD_PORT",
               "Port should be >= 0 and < 65536. Received type number "
               "(-2147483648).");
  o = (cnet_connect_options_t){0};
  REFUSED_NULL(cnet_connect(loop, &o, never_socket, NULL), "ERR_MISSING_ARGS",
               "The \"options\" or \"port\" or \"path\" argument must be "
               "specified");
  o = (cnet_connect_options_t){.path = long_path(200)};
  REFUSED_NULL(cnet_create_connection(loop, &o, never_socket, NULL),
               "ENAMETOOLONG", "connect ENAMETOOLONG");
  o = (cnet_connect_options_t){.port = 80, .onread = &bad_onread};
  REFUSED_NULL(cnet_create_connection(loop, &o, never_socket, NULL),
               "ERR_INVALID_ARG_VALUE",
               "The property 'options.onread' is invalid. Received { ... }");
  /* nothing was left behind: loop_finish insists on an empty loop */
  run_for(loop, 20);
  ASSERT_EQ(0, never_calls);
  loop_finish(loop);
}

/* ======================================================================== */
/* Socket: writing                                                           */

static int write_cbs, releases;

static void count_release(void *data, size_t len, void *ctx) {
  (void)data;
  (void)ctx;
  ASSERT_EQ(0, len);
  releases++;
}

static void count_write_cb(cnet_socket_t *s, const cnet_error_t *err,
                           void *ctx) {
  (void)s;
  (void)ctx;
  ASSERT_NULL(err);
  write_cbs++;
}

TEST_CASE(bi26_socket_write_family) {
  char owned[] = "OWNED";

  pair_open();
  /* NULL socket */
  REFUSED(cnet_socket_write(NULL, "x", 1, never_write_cb, NULL),
          "ERR_INVALID_ARG_TYPE",
          "The \"socket\" argument must be of type cnet_socket_t. Received "
          "NULL");
  REFUSED(cnet_socket_write_owned(NULL, owned, 5, never_release, NULL,
                                  never_write_cb, NULL),
          "ERR_INVALID_ARG_TYPE",
          "The \"socket\" argument must be of type cnet_socket_t. Received "
          "NULL");
  REFUSED(cnet_socket_write_string(NULL, "x", "utf8", never_write_cb, NULL),
          "ERR_INVALID_ARG_TYPE",
          "The \"socket\" argument must be of type cnet_socket_t. Received "
          "NULL");
  /* NULL data with a length */
  REFUSED(cnet_socket_write(P.client, NULL, 5, never_write_cb, NULL),
          "ERR_STREAM_NULL_VALUES", "May not write null values to stream");
  REFUSED(cnet_socket_write(P.client, NULL, SIZE_MAX, never_write_cb, NULL),
          "ERR_STREAM_NULL_VALUES", "May not write null values to stream");
  REFUSED(cnet_socket_write_owned(P.client, NULL, 5, never_release, NULL,
                                  never_write_cb, NULL),
          "ERR_STREAM_NULL_VALUES", "May not write null values to stream");
  REFUSED(
      cnet_socket_write_string(P.client, NULL, "utf8", never_write_cb, NULL),
      "ERR_STREAM_NULL_VALUES", "May not write null values to stream");
  /* unknown encodings */
  REFUSED(
      cnet_socket_write_string(P.client, "abc", "bogus", never_write_cb, NULL),
      "ERR_UNKNOWN_ENCODING", "Unknown encoding: bogus");
  REFUSED(
      cnet_socket_write_string(P.client, "abc", "utf-9", never_write_cb, NULL),
      "ERR_UNKNOWN_ENCODING", "Unknown encoding: utf-9");
  /* nothing was taken: no bytes counted, no callback, no release */
  ASSERT_EQ(0, cnet_socket_bytes_written(P.client));
  ASSERT_EQ(0, cnet_socket_writable_length(P.client));
  run_for(P.loop, 20);
  ASSERT_EQ(0, never_calls);
  ASSERT_EQ(0, P.got_len);
  /* Zero bytes are a write like any other (Node: Buffer.alloc(0)). */
  ACCEPTED(cnet_socket_write(P.client, NULL, 0, count_write_cb, NULL));
  /* NULL and "" encodings are utf8, Node's default */
  ACCEPTED(cnet_socket_write_string(P.client, "h\xc3\xa9", NULL, count_write_cb,
                                    NULL));
  ACCEPTED(cnet_socket_write_string(P.client, "llo", "", count_write_cb, NULL));
  ACCEPTED(cnet_socket_write(P.client, " world", 6, count_write_cb, NULL));
  ACCEPTED(cnet_socket_write_owned(P.client, owned, 5, NULL, NULL,
                                   count_write_cb, NULL));
  ACCEPTED(cnet_socket_write_owned(P.client, NULL, 0, count_release, NULL,
                                   count_write_cb, NULL));
  pair_expect("h\xc3\xa9llo worldOWNED");
  RUN_UNTIL(P.loop, write_cbs == 6 && releases == 1);
  ASSERT_EQ(3 + 3 + 6 + 5, cnet_socket_bytes_written(P.client));
  ASSERT_EQ(0, never_calls);
  pair_close();
}

TEST_CASE(bi27_cork_uncork) {
  pair_open();
  QUIET(cnet_socket_cork(NULL));
  QUIET(cnet_socket_uncork(NULL));
  /* uncork without cork: nothing, and the count does not go below zero */
  for (int i = 0; i < 3; i++)
    QUIET(cnet_socket_uncork(P.client));
  ASSERT_EQ(1, cnet_socket_write(P.client, "a", 1, NULL, NULL)); /* at once */
  cnet_socket_cork(P.client);
  ASSERT_EQ(0, cnet_socket_write(P.client, "b", 1, NULL, NULL)); /* queued */
  cnet_socket_uncork(P.client);
  cnet_socket_uncork(P.client); /* one too many */
  ASSERT_GE(cnet_socket_write(P.client, "c", 1, NULL, NULL), 0); /* sent */
  pair_expect("abc");
  pair_close();
}

static int end_cbs;

static void count_end_cb(cnet_socket_t *s, const cnet_error_t *err, void *ctx) {
  (void)s;
  (void)ctx;
  ASSERT_NULL(err);
  end_cbs++;
}

TEST_CASE(bi28_socket_end) {
  pair_open();
  REFUSED(cnet_socket_end(NULL, NULL, 0, never_write_cb, NULL),
          "ERR_INVALID_ARG_TYPE",
          "The \"socket\" argument must be of type cnet_socket_t. Received "
          "NULL");
  REFUSED(cnet_socket_end(P.client, NULL, 1, never_write_cb, NULL),
          "ERR_STREAM_NULL_VALUES", "May not write null values to stream");
  REFUSED(cnet_socket_end(P.client, NULL, SIZE_MAX, NULL, NULL),
          "ERR_STREAM_NULL_VALUES", "May not write null values to stream");
  /* not ended: still writable, nothing sent, no FIN */
  ASSERT_STR_EQ("open", cnet_socket_ready_state(P.client));
  run_for(P.loop, 20);
  ASSERT_EQ(0, P.peer_ends);
  ASSERT_EQ(0, never_calls);
  ASSERT_EQ(1, cnet_socket_write(P.client, "still", 5, NULL, NULL));
  ACCEPTED(cnet_socket_end(P.client, " open", 5, count_end_cb, NULL));
  pair_expect("still open");
  RUN_UNTIL(P.loop, P.peer_ends == 1 && end_cbs == 1);
  /* ending twice is harmless (documented) */
  ACCEPTED(cnet_socket_end(P.client, NULL, 0, NULL, NULL));
  pair_close();
}

/* ======================================================================== */
/* Socket: lifetime                                                          */

TEST_CASE(bi29_socket_lifetime) {
  uv_loop_t *loop = loop_new();
  cnet_error_t err;
  int sv[2];
  cnet_socket_options_t o;
  cnet_socket_t *ipc;
  char buf[8];

  memset(&err, 0, sizeof(err));
  QUIET(cnet_socket_destroy(NULL, NULL));
  QUIET(cnet_socket_destroy(NULL, &err));
  QUIET(cnet_socket_free(NULL));
  QUIET(cnet_socket_retain(NULL));
  QUIET(cnet_socket_release(NULL));
  REFUSED(cnet_socket_reset_and_destroy(NULL), "EINVAL", "invalid argument");
  /* DS-08: an IPC socket cannot be reset; it stays usable */
  ASSERT_EQ(0, socketpair(AF_UNIX, SOCK_STREAM, 0, sv));
  o = (cnet_socket_options_t){.wrap_fd = true, .fd = sv[0]};
  ipc = cnet_socket_new(loop, &o);
  ASSERT_NOT_NULL(ipc);
  REFUSED(cnet_socket_reset_and_destroy(ipc), "ERR_INVALID_HANDLE_TYPE",
          "This handle type cannot be sent");
  ASSERT(!cnet_socket_destroyed(ipc));
  ASSERT_EQ(1, cnet_socket_write(ipc, "ok", 2, NULL, NULL));
  ASSERT_EQ(2, read(sv[1], buf, sizeof(buf)));
  ASSERT_MEM_EQ("ok", buf, 2);
  /* retain/release balance on a socket we own: still ours to free */
  cnet_socket_retain(ipc);
  cnet_socket_release(ipc);
  cnet_socket_destroy(ipc, NULL);
  cnet_socket_destroy(ipc, NULL);               /* idempotent */
  ACCEPTED(cnet_socket_reset_and_destroy(ipc)); /* destroyed: 0 */
  cnet_socket_free(ipc);
  loop_finish(loop);
  close(sv[1]);
}

/* ======================================================================== */
/* Socket: reading                                                           */

TEST_CASE(bi30_pause_resume) {
  pair_open();
  QUIET(cnet_socket_pause(NULL));
  QUIET(cnet_socket_resume(NULL));
  QUIET(ASSERT(!cnet_socket_is_paused(NULL)));
  /* pause twice, resume twice: no count, just a state */
  cnet_socket_pause(P.peer);
  cnet_socket_pause(P.peer);
  ASSERT(cnet_socket_is_paused(P.peer));
  ASSERT_EQ(1, cnet_socket_write(P.client, "held", 4, NULL, NULL));
  run_for(P.loop, 30);
  ASSERT_EQ(0, P.got_len);
  cnet_socket_resume(P.peer);
  cnet_socket_resume(P.peer);
  ASSERT(!cnet_socket_is_paused(P.peer));
  pair_expect("held");
  pair_close();
}

TEST_CASE(bi31_set_encoding) {
  pair_open();
  REFUSED(cnet_socket_set_encoding(NULL, "hex"), "EINVAL", "invalid argument");
  ACCEPTED(cnet_socket_set_encoding(P.peer, "hex"));
  REFUSED(cnet_socket_set_encoding(P.peer, "bogus"), "ERR_UNKNOWN_ENCODING",
          "Unknown encoding: bogus");
  REFUSED(cnet_socket_set_encoding(P.peer, "HEX "), "ERR_UNKNOWN_ENCODING",
          "Unknown encoding: HEX ");
  /* the previous encoding still applies */
  ASSERT_EQ(1, cnet_socket_write(P.client, "AB", 2, NULL, NULL));
  pair_expect("4142");
  /* NULL is utf8 (Node's default), not an error */
  ACCEPTED(cnet_socket_set_encoding(P.peer, NULL));
  ASSERT_EQ(1, cnet_socket_write(P.client, "CD", 2, NULL, NULL));
  pair_expect("4142CD");
  pair_close();
}

static char onread_buf[64];
static char onread_got[64];
static size_t onread_len;

static bool onread_collect(cnet_socket_t *s, char *data, size_t n, void *ctx) {
  (void)s;
  (void)ctx;
  ASSERT(data >= onread_buf && data + n <= onread_buf + sizeof(onread_buf));
  ASSERT(onread_len + n < sizeof(onread_got));
  memcpy(onread_got + onread_len, data, n);
  onread_len += n;
  return true;
}

TEST_CASE(bi32_set_onread) {
  cnet_onread_t good = {.buffer = onread_buf,
                        .len = sizeof(onread_buf),
                        .callback = onread_collect};
  cnet_onread_t no_cb = {.buffer = onread_buf, .len = sizeof(onread_buf)};
  cnet_onread_t no_buffer = {.callback = onread_collect};
  cnet_onread_t zero_len = {
      .buffer = onread_buf, .len = 0, .callback = onread_collect};

  pair_open();
  REFUSED(cnet_socket_set_onread(NULL, &good), "EINVAL", "invalid argument");
  REFUSED(cnet_socket_set_onread(NULL, NULL), "EINVAL", "invalid argument");
  REFUSED(cnet_socket_set_onread(P.peer, &no_cb), "ERR_INVALID_ARG_VALUE",
          "The property 'options.onread' is invalid. Received { ... }");
  REFUSED(cnet_socket_set_onread(P.peer, &no_buffer), "ERR_INVALID_ARG_VALUE",
          "The property 'options.onread' is invalid. Received { ... }");
  REFUSED(cnet_socket_set_onread(P.peer, &zero_len), "ERR_INVALID_ARG_VALUE",
          "The property 'options.onread' is invalid. Received { ... }");
  /* none applied: 'data' as before */
  ASSERT_EQ(1, cnet_socket_write(P.client, "one", 3, NULL, NULL));
  pair_expect("one");
  /* a good one, then bad ones: the good one still applies */
  ACCEPTED(cnet_socket_set_onread(P.peer, &good));
  REFUSED(cnet_socket_set_onread(P.peer, &zero_len), "ERR_INVALID_ARG_VALUE",
          "The property 'options.onread' is invalid. Received { ... }");
  ASSERT_EQ(1, cnet_socket_write(P.client, "two", 3, NULL, NULL));
  RUN_UNTIL(P.loop, onread_len == 3);
  ASSERT_MEM_EQ("two", onread_got, 3);
  ASSERT_STR_EQ("one", P.got);
  /* NULL goes back to 'data' */
  ACCEPTED(cnet_socket_set_onread(P.peer, NULL));
  ASSERT_EQ(1, cnet_socket_write(P.client, "three", 5, NULL, NULL));
  pair_expect("onethree");
  ASSERT_EQ(3, onread_len);
  pair_close();
}

static int timeouts;

static void count_timeout(cnet_socket_t *s, const cnet_event_t *ev, void *ctx) {
  (void)s;
  (void)ev;
  (void)ctx;
  timeouts++;
}

TEST_CASE(bi33_set_timeout) {
  uint64_t start;

  pair_open();
  REFUSED(cnet_socket_set_timeout(NULL, 10, never_socket, NULL), "EINVAL",
          "invalid argument");
  QUIET(ASSERT_EQ(0, cnet_socket_timeout(NULL)));
  ACCEPTED(cnet_socket_set_timeout(P.client, 60, count_timeout, NULL));
  /* TO-02: negative (C's stand-in for NaN and -Infinity too) */
  REFUSED(cnet_socket_set_timeout(P.client, -1, never_socket, NULL),
          "ERR_OUT_OF_RANGE",
          "The value of \"msecs\" is out of range. It must be a non-negative "
          "finite number. Received -1");
  REFUSED(cnet_socket_set_timeout(P.client, INT64_MIN, never_socket, NULL),
          "ERR_OUT_OF_RANGE",
          "The value of \"msecs\" is out of range. It must be a non-negative "
          "finite number. Received -9223372036854775808");
  /* the previous timeout applies: same value, same single listener */
  ASSERT_EQ(60, cnet_socket_timeout(P.client));
  ASSERT_EQ(1, cnet_socket_listener_count(P.client, CNET_EV_TIMEOUT));
  start = uv_now(P.loop);
  RUN_UNTIL(P.loop, timeouts == 1);
  ASSERT_GE(uv_now(P.loop) - start, 50);
  ASSERT_EQ(0, never_calls);
  /* a huge one is clamped, not refused; then off */
  ACCEPTED(cnet_socket_set_timeout(P.client, INT64_MAX, NULL, NULL));
  ASSERT_EQ((uint64_t)INT64_MAX, cnet_socket_timeout(P.client));
  ACCEPTED(cnet_socket_set_timeout(P.client, 0, NULL, NULL));
  ASSERT_EQ(0, cnet_socket_timeout(P.client));
  pair_close();
  /* after destroy: a no-op, even for a bad value (TO-08, as Node) */
  {
    uv_loop_t *loop = loop_new();
    cnet_socket_t *s = cnet_socket_new(loop, NULL);
    cnet_socket_destroy(s, NULL);
    ACCEPTED(cnet_socket_set_timeout(s, -1, never_socket, NULL));
    ASSERT_EQ(0, cnet_socket_listener_count(s, CNET_EV_TIMEOUT));
    cnet_socket_free(s);
    loop_finish(loop);
  }
}

TEST_CASE(bi34_pipe_unpipe) {
  uv_loop_t *other = loop_new();
  cnet_socket_t *elsewhere = cnet_socket_new(other, NULL);
  cnet_pipe_options_t no_end = {.no_end = true};

  pair_open();
  REFUSED(cnet_socket_pipe(NULL, P.client, NULL), "EINVAL", "invalid argument");
  REFUSED(cnet_socket_pipe(P.peer, NULL, &no_end), "EINVAL",
          "invalid argument");
  REFUSED(cnet_socket_pipe(NULL, NULL, NULL), "EINVAL", "invalid argument");
  /* objects of two loops cannot be piped */
  REFUSED(cnet_socket_pipe(P.peer, elsewhere, NULL), "EINVAL",
          "invalid argument");
  REFUSED(cnet_socket_pipe(elsewhere, P.client, NULL), "EINVAL",
          "invalid argument");
  REFUSED(cnet_socket_unpipe(NULL, P.client), "EINVAL", "invalid argument");
  REFUSED(cnet_socket_unpipe(NULL, NULL), "EINVAL", "invalid argument");
  /* unpipe of nothing: 0, and the socket still flows */
  ACCEPTED(cnet_socket_unpipe(P.peer, P.client));
  ACCEPTED(cnet_socket_unpipe(P.peer, NULL));
  ACCEPTED(cnet_socket_unpipe(P.peer, elsewhere));
  ASSERT(!cnet_socket_is_paused(P.peer));
  ASSERT_EQ(1, cnet_socket_write(P.client, "flow", 4, NULL, NULL));
  pair_expect("flow");
  /* echo: peer piped into itself; the client reads it back */
  ACCEPTED(cnet_socket_pipe(P.peer, P.peer, &no_end));
  {
    char echo[8] = "";
    size_t n = 0;
    ASSERT_EQ(0, cnet_socket_set_onread(
                     P.client, &(cnet_onread_t){.buffer = onread_buf,
                                                .len = sizeof(onread_buf),
                                                .callback = onread_collect}));
    ASSERT_EQ(1, cnet_socket_write(P.client, "echo", 4, NULL, NULL));
    RUN_UNTIL(P.loop, onread_len >= 4);
    n = onread_len;
    memcpy(echo, onread_got, n);
    ASSERT_STR_EQ("echo", echo);
  }
  ACCEPTED(cnet_socket_unpipe(P.peer, NULL));
  cnet_socket_free(elsewhere);
  loop_finish(other);
  pair_close();
}

/* ======================================================================== */
/* Socket: options and properties                                            */

TEST_CASE(bi35_socket_options_and_properties) {
  uv_loop_t *loop = loop_new();
  cnet_socket_t *s = cnet_socket_new(loop, NULL);

  /* void functions on NULL: nothing */
  QUIET(cnet_socket_set_no_delay(NULL, true));
  QUIET(cnet_socket_set_keep_alive(NULL, true, 1000));
  QUIET(cnet_socket_ref(NULL));
  QUIET(cnet_socket_unref(NULL));
  QUIET(cnet_socket_set_data(NULL, &data_marker));
  /* getters on NULL: what an empty, closed socket answers */
  QUIET(ASSERT(!cnet_socket_connecting(NULL)));
  QUIET(ASSERT(cnet_socket_pending(NULL)));
  QUIET(ASSERT(!cnet_socket_destroyed(NULL)));
  QUIET(ASSERT_STR_EQ("closed", cnet_socket_ready_state(NULL)));
  QUIET(ASSERT_EQ(0, cnet_socket_bytes_read(NULL)));
  QUIET(ASSERT_EQ(0, cnet_socket_bytes_written(NULL)));
  QUIET(ASSERT_EQ(0, cnet_socket_writable_length(NULL)));
  QUIET(ASSERT_EQ(0, cnet_socket_buffer_size(NULL)));
  QUIET(ASSERT_NULL(cnet_socket_attempted_address(NULL, 0)));
  QUIET(ASSERT_NULL(cnet_socket_attempt_error(NULL, 0)));
  QUIET(ASSERT_NULL(cnet_socket_server(NULL)));
  QUIET(ASSERT_NULL(cnet_socket_get_data(NULL)));
  QUIET(ASSERT_NULL(cnet_socket_loop(NULL)));
  /* indexes past the end */
  ASSERT_NULL(cnet_socket_attempted_address(s, 0));
  ASSERT_NULL(cnet_socket_attempted_address(s, SIZE_MAX));
  ASSERT_NULL(cnet_socket_attempt_error(s, SIZE_MAX));
  /* extreme values on a socket with no connection: remembered */
  cnet_socket_set_keep_alive(s, true, UINT_MAX);
  cnet_socket_set_keep_alive(s, false, 0);
  cnet_socket_set_no_delay(s, true);
  cnet_socket_set_no_delay(s, true);
  cnet_socket_unref(s);
  cnet_socket_unref(s);
  cnet_socket_ref(s);
  cnet_socket_set_data(s, &data_marker);
  ASSERT(cnet_socket_get_data(s) == &data_marker);
  ASSERT(cnet_socket_loop(s) == loop);
  ASSERT_NULL(cnet_socket_server(s));
  ASSERT(!cnet_socket_connecting(s));
  ASSERT(cnet_socket_pending(s));
  ASSERT(!cnet_socket_destroyed(s));
  ASSERT_STR_EQ("open", cnet_socket_ready_state(s)); /* SC-01 */
  ASSERT_EQ(0, cnet_socket_bytes_read(s));
  ASSERT_EQ(0, cnet_socket_bytes_written(s));
  ASSERT_EQ(0, cnet_socket_writable_length(s));
  ASSERT_EQ(0, cnet_socket_buffer_size(s));
  cnet_socket_free(s);
  loop_finish(loop);
}

TEST_CASE(bi36_socket_addresses) {
  cnet_address_t a;

  pair_open();
  REFUSED(cnet_socket_address(P.client, NULL), "EINVAL", "invalid argument");
  REFUSED(cnet_socket_address(NULL, NULL), "EINVAL", "invalid argument");
  REFUSED(cnet_socket_remote_address(P.client, NULL), "EINVAL",
          "invalid argument");
  REFUSED(cnet_socket_remote_address(NULL, NULL), "EINVAL", "invalid argument");
  /* a NULL socket is one with no connection (Node: {} / undefined) */
  memset(&a, 0x5a, sizeof(a));
  ASSERT_EQ(UV_ENOTCONN, cnet_socket_address(NULL, &a));
  ASSERT_EQ(0, a.port);
  memset(&a, 0x5a, sizeof(a));
  ASSERT_EQ(UV_ENOTCONN, cnet_socket_remote_address(NULL, &a));
  ASSERT_EQ(0, a.port);
  /* extreme option values on a connected socket: no error, no crash */
  QUIET(cnet_socket_set_keep_alive(P.client, true, UINT_MAX));
  QUIET(cnet_socket_set_keep_alive(P.client, true, 0));
  QUIET(cnet_socket_set_no_delay(P.client, true));
  /* and the real ones still answer */
  ACCEPTED(cnet_socket_remote_address(P.client, &a));
  ASSERT_EQ(server_port(P.srv), a.port);
  ACCEPTED(cnet_socket_address(P.client, &a));
  ASSERT_STR_EQ("127.0.0.1", a.address);
  pair_close();
}

/* ======================================================================== */
/* Channels                                                                  */

static char msg_got[256];
static size_t msg_len;
static int msgs;

static void on_message(cnet_socket_t *s, const cnet_event_t *ev, void *ctx) {
  (void)s;
  (void)ctx;
  ASSERT_NULL(ev->message.socket);
  ASSERT_NULL(ev->message.server);
  ASSERT(msg_len + ev->message.len < sizeof(msg_got));
  memcpy(msg_got + msg_len, ev->message.data, ev->message.len);
  msg_len += ev->message.len;
  msgs++;
}

static void never_send_cb(cnet_socket_t *ch, const cnet_error_t *err,
                          void *ctx) {
  (void)ch;
  (void)err;
  (void)ctx;
  never_calls++;
}

static int sends_done;

static void count_send_cb(cnet_socket_t *ch, const cnet_error_t *err,
                          void *ctx) {
  (void)ch;
  (void)ctx;
  ASSERT_NULL(err);
  sends_done++;
}

TEST_CASE(bi37_channel_send_family) {
  uv_loop_t *loop = loop_new();
  cnet_server_t *idle = cnet_create_server(loop, NULL, NULL, NULL);
  cnet_socket_t *plain = cnet_socket_new(loop, NULL);
  cnet_socket_options_t o;
  cnet_socket_t *a, *b;
  int sv[2];

  ASSERT_EQ(0, socketpair(AF_UNIX, SOCK_STREAM, 0, sv));
  o = (cnet_socket_options_t){.wrap_fd = true, .fd = sv[0], .channel = true};
  a = cnet_socket_new(loop, &o);
  o.fd = sv[1];
  b = cnet_socket_new(loop, &o);
  ASSERT_NOT_NULL(a);
  ASSERT_NOT_NULL(b);
  ASSERT_EQ(0, cnet_socket_on(b, CNET_EV_MESSAGE, on_message, NULL));
  ASSERT_EQ(0, cnet_socket_on(a, CNET_EV_ERROR, never_socket, NULL));
  ASSERT_EQ(0, cnet_socket_on(b, CNET_EV_ERROR, never_socket, NULL));

  /* not a channel */
  REFUSED(cnet_socket_send(NULL, "x", 1, NULL, never_send_cb, NULL), "EINVAL",
          "invalid argument");
  REFUSED(cnet_socket_send(plain, "x", 1, NULL, never_send_cb, NULL), "EINVAL",
          "invalid argument");
  REFUSED(
      cnet_socket_send_socket(NULL, "x", 1, plain, NULL, never_send_cb, NULL),
      "EINVAL", "invalid argument");
  REFUSED(
      cnet_socket_send_server(NULL, "x", 1, idle, NULL, never_send_cb, NULL),
      "EINVAL", "invalid argument");
  /* too big, NULL bytes */
  REFUSED(cnet_socket_send(a, "x", (size_t)CNET_CHANNEL_MAX + 1, NULL,
                           never_send_cb, NULL),
          "EMSGSIZE", "send EMSGSIZE");
  REFUSED(cnet_socket_send(a, NULL, SIZE_MAX, NULL, never_send_cb, NULL),
          "EMSGSIZE", "send EMSGSIZE");
  REFUSED(cnet_socket_send(a, NULL, 3, NULL, never_send_cb, NULL),
          "ERR_STREAM_NULL_VALUES", "May not write null values to stream");
  /* nothing to hand over */
  REFUSED(cnet_socket_send_socket(a, "x", 1, NULL, NULL, never_send_cb, NULL),
          "ERR_INVALID_HANDLE_TYPE", "This handle type cannot be sent");
  REFUSED(cnet_socket_send_socket(a, "x", 1, a, NULL, never_send_cb, NULL),
          "ERR_INVALID_HANDLE_TYPE", "This handle type cannot be sent");
  REFUSED(cnet_socket_send_socket(a, "x", 1, b, NULL, never_send_cb, NULL),
          "ERR_INVALID_HANDLE_TYPE", "This handle type cannot be sent");
  REFUSED(cnet_socket_send_socket(a, "x", 1, plain, NULL, never_send_cb, NULL),
          "ERR_INVALID_HANDLE_TYPE", "This handle type cannot be sent");
  REFUSED(cnet_socket_send_server(a, "x", 1, NULL, NULL, never_send_cb, NULL),
          "ERR_SERVER_NOT_RUNNING", "Server is not running.");
  REFUSED(cnet_socket_send_server(a, "x", 1, idle, NULL, never_send_cb, NULL),
          "ERR_SERVER_NOT_RUNNING", "Server is not running.");
  /* bytes on a channel would break its framing */
  REFUSED(cnet_socket_write(a, "x", 1, never_write_cb, NULL),
          "ERR_INVALID_ARG_VALUE",
          "The argument 'socket' is a channel: use cnet_socket_send(). "
          "Received a channel");
  run_for(loop, 30);
  ASSERT_EQ(0, msgs);
  ASSERT_EQ(0, never_calls);
  /* the channel still carries messages, byte for byte; zero bytes too */
  ACCEPTED(cnet_socket_send(a, "hello", 5, NULL, count_send_cb, NULL));
  ACCEPTED(cnet_socket_send(a, NULL, 0, NULL, count_send_cb, NULL));
  ACCEPTED(cnet_socket_send(a, "\0bin\0", 5, NULL, count_send_cb, NULL));
  RUN_UNTIL(loop, msgs == 3 && sends_done == 3);
  ASSERT_EQ(10, msg_len);
  ASSERT_MEM_EQ("hello\0bin\0", msg_got, 10);
  ASSERT_EQ(0, never_calls);
  /* an ended channel is closed for sends */
  ASSERT_EQ(0, cnet_socket_off(a, CNET_EV_ERROR, never_socket, NULL));
  ASSERT_EQ(0, cnet_socket_off(b, CNET_EV_ERROR, never_socket, NULL));
  cnet_socket_destroy(a, NULL);
  REFUSED(cnet_socket_send(a, "x", 1, NULL, never_send_cb, NULL),
          "ERR_IPC_CHANNEL_CLOSED", "Channel closed");
  cnet_socket_free(a);
  cnet_socket_free(b);
  cnet_socket_free(plain);
  cnet_server_free(idle);
  loop_finish(loop);
  ASSERT_EQ(0, never_calls);
}
