use autocandle_core::AutoRegister;

#[derive(AutoRegister)]
#[auto(model_type = "sam", task = "mask-generation", class = "SamModel")]
struct SamModel;

fn main() {}
