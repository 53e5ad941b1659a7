/* Compiles every public header under strict C99 and C++ (make check-headers).
   Layouts are compared with libivcs's Rust types by tests/c/layout.c
   (make check-layout). */
#include "iv_cs.h"
#include "ivcs_host.h"

static void on_log(int level, const char *message, void *user) {
    (void)level;
    (void)message;
    (void)user;
}

int main(void) {
    iv_cs_init_parm_s p;
    ivcs_host_log_cb cb = on_log;
    /* Declared with these types (unevaluated: nothing to link). */
    size_t update = sizeof(ivcs_host_engine_update("a.signed"));
    size_t keys = sizeof(ivcs_host_set_engine_keys("keys.pub"));
    p.channel_num = CS_CH_NUM;
    p.ch_params = 0;
    (void)cb;
    return update == sizeof(int) && keys == sizeof(int) && (int)p.channel_num == CS_CH_NUM && IV_ERR_CS_NEED_IDR_FRAME == -611 &&
                   IVCS_LOG_TRACE == 4
               ? 0
               : 1;
}
