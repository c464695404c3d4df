//! JNI bindings (work in progress).
