// Typed wrappers for libcurl's variadic and macro API, which Swift cannot call directly, and the
// Linux event API (not in Swift's Glibc module) that drives curl's multi socket interface.
#include <curl/curl.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>

static inline CURLcode sluice_curl_easy_setopt_long(CURL *h, CURLoption o, long v) { return curl_easy_setopt(h, o, v); }
static inline CURLcode sluice_curl_easy_setopt_off(CURL *h, CURLoption o, curl_off_t v) { return curl_easy_setopt(h, o, v); }
static inline CURLcode sluice_curl_easy_setopt_string(CURL *h, CURLoption o, const char *v) { return curl_easy_setopt(h, o, v); }
static inline CURLcode sluice_curl_easy_setopt_pointer(CURL *h, CURLoption o, void *v) { return curl_easy_setopt(h, o, v); }
static inline CURLcode sluice_curl_easy_setopt_slist(CURL *h, CURLoption o, struct curl_slist *v) { return curl_easy_setopt(h, o, v); }

typedef size_t (*sluice_curl_data_callback)(char *ptr, size_t size, size_t nmemb, void *userdata);
static inline CURLcode sluice_curl_easy_setopt_data_callback(CURL *h, CURLoption o, sluice_curl_data_callback f) { return curl_easy_setopt(h, o, f); }

static inline CURLcode sluice_curl_easy_getinfo_long(CURL *h, CURLINFO i, long *v) { return curl_easy_getinfo(h, i, v); }
static inline CURLcode sluice_curl_easy_getinfo_pointer(CURL *h, CURLINFO i, void **v) { return curl_easy_getinfo(h, i, v); }
static inline CURLcode sluice_curl_easy_getinfo_off(CURL *h, CURLINFO i, curl_off_t *v) { return curl_easy_getinfo(h, i, v); }

typedef int (*sluice_curl_prereq_callback)(void *userdata, char *primaryIP, char *localIP, int primaryPort, int localPort);
static inline CURLcode sluice_curl_easy_set_prereq(CURL *h, sluice_curl_prereq_callback f, void *userdata) {
    CURLcode code = curl_easy_setopt(h, CURLOPT_PREREQFUNCTION, f);
    if (code == CURLE_OK) code = curl_easy_setopt(h, CURLOPT_PREREQDATA, userdata);
    return code;
}

static inline CURLMcode sluice_curl_multi_setopt_long(CURLM *m, CURLMoption o, long v) { return curl_multi_setopt(m, o, v); }

typedef int (*sluice_curl_socket_callback)(CURL *easy, curl_socket_t socket, int what, void *userdata, void *socketdata);
typedef int (*sluice_curl_timer_callback)(CURLM *multi, long timeoutMilliseconds, void *userdata);
static inline CURLMcode sluice_curl_multi_set_callbacks(CURLM *m, sluice_curl_socket_callback onSocket,
                                                        sluice_curl_timer_callback onTimer, void *userdata) {
    CURLMcode code = curl_multi_setopt(m, CURLMOPT_SOCKETFUNCTION, onSocket);
    if (code == CURLM_OK) code = curl_multi_setopt(m, CURLMOPT_SOCKETDATA, userdata);
    if (code == CURLM_OK) code = curl_multi_setopt(m, CURLMOPT_TIMERFUNCTION, onTimer);
    if (code == CURLM_OK) code = curl_multi_setopt(m, CURLMOPT_TIMERDATA, userdata);
    return code;
}
static inline curl_socket_t sluice_curl_socket_timeout(void) { return CURL_SOCKET_TIMEOUT; }

static inline size_t sluice_curl_writefunc_pause(void) { return CURL_WRITEFUNC_PAUSE; }
static inline size_t sluice_curl_readfunc_pause(void) { return CURL_READFUNC_PAUSE; }
static inline int sluice_curlpause_cont(void) { return CURLPAUSE_CONT; }
