(module
  (table 2 funcref)
  (elem (i32.const 0) $add $mul)

  (func $add (param i32 i32) (result i32)
    local.get 0
    local.get 1
    i32.add)

  (func $mul (param i32 i32) (result i32)
    local.get 0
    local.get 1
    i32.mul)

  (func (export "call_indirect") (param i32 i32 i32) (result i32)
    local.get 1
    local.get 2
    local.get 0
    call_indirect (param i32 i32) (result i32)))
