use autocandle_core::AutoRegister;

#[derive(AutoRegister)]
#[auto(model_type = "bert", task = "masked_lm")]
struct BertForMaskedLM;

#[derive(AutoRegister)]
#[auto(model_type = "bert", task = "fill-mask")]
struct BertForFillMask;

#[derive(AutoRegister)]
#[auto(model_type = "bert", task = "tokenizer")]
struct BertTokenizer;

fn main() {}
