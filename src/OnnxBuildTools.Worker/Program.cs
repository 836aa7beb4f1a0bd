using OnnxBuildTools.Worker;

return CommandLine.Run(args, Console.Out, Console.Error);
