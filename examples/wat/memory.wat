(module
  (memory (export "memory") 1) ;; 1 page = 64KB

  (func (export "get_memory_size") (result i32)
    memory.size)

  (func (export "write_byte") (param i32 i32)
    local.get 0 ;; address
    local.get 1 ;; value
    i32.store8)

  (func (export "read_byte") (param i32) (result i32)
    local.get 0 ;; address
    i32.load8_u))
