(module
  (import "env" "host_get_config" (func $get_config (param i32 i32 i32 i32) (result i32)))
  (import "env" "host_storage_set" (func $storage_set (param i32 i32 i32 i32) (result i32)))
  (import "env" "host_http_fetch" (func $http_fetch (param i32 i32 i32 i32) (result i32)))
  (import "env" "host_log" (func $log (param i32 i32 i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "greeting")
  (data (i32.const 16) "{\"url\":\"https://example.com/\"}")

  ;; Reads config "greeting" into 256.., logs it, stores it under the same key.
  ;; Returns the value's length.
  (func (export "remember_greeting") (result i32)
    (local $len i32)
    (local.set $len (call $get_config (i32.const 0) (i32.const 8) (i32.const 256) (i32.const 128)))
    (call $log (i32.const 1) (i32.const 256) (local.get $len))
    (drop (call $storage_set (i32.const 0) (i32.const 8) (i32.const 256) (local.get $len)))
    (local.get $len))

  ;; Tries the network (needs Capability.NetworkAccess).
  (func (export "fetch") (result i32)
    (call $http_fetch (i32.const 16) (i32.const 30) (i32.const 512) (i32.const 1024))))
