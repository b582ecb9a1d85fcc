use autocandle_core::AutoRegister;

#[derive(AutoRegister)]
#[auto(model_type = "Bert", task = "maskedlm", task = "masked-lm", weights = "bert")]
enum BertForMaskedLM<T> {
    Head(T),
}

fn main() {}
