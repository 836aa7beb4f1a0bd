Console.Error.WriteLine("onnx-build-tools: no command yet");
return 2;
