" Vim/Neovim highlighting for slimc's .slim files (the same classes as the TextMate grammar
" in editors/vscode; tests/editors.rs checks both list every built-in op and function).
if exists("b:current_syntax")
  finish
endif

syn keyword slimcKeyword network block input rounding width
syn keyword slimcConditional if else
syn keyword slimcBoolean true false
syn keyword slimcConstant floor nearest bilinear
syn keyword slimcSection stem stage head in out
syn keyword slimcOp conv dwconv conv_transpose linear bn relu relu6 hswish swish sigmoid hsigmoid gelu maxpool avgpool flatten layernorm layer_scale upsample dropout drop_path identity add mul concat split slice shuffle subsample zeropad attend tokens class_token pos_embed token
syn keyword slimcFunction fixed ratio make_divisible min max int round
syn match slimcNumber "\<\d\+\(\.\d\+\)\?\([eE][+-]\?\d\+\)\?\>"
syn match slimcArrow "->"
syn match slimcComment "#.*$"

hi def link slimcKeyword Keyword
hi def link slimcConditional Conditional
hi def link slimcBoolean Boolean
hi def link slimcConstant Constant
hi def link slimcSection Identifier
hi def link slimcOp Function
hi def link slimcFunction Function
hi def link slimcNumber Number
hi def link slimcArrow Operator
hi def link slimcComment Comment

let b:current_syntax = "slimc"
